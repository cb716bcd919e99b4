#include "store/historical_graphs.hpp"

#include <exception>
#include <string>

#include "model/error.hpp"
#include "store/graph_store.hpp"
#include "store/sql.hpp"

namespace cmdb::store {

using model::Error;
using model::ErrorCode;
using model::Timestamp;

bool HistoryIsFinalAt(DbSession& db, Timestamp at) {
  // A session this role may not inspect shows a NULL state: it could be writing, so the
  // answer is no. Idle sessions have no xact_start.
  bool final = false;
  sql::Run(db,
           "SELECT coalesce(bool_and(state IS NOT NULL AND (xact_start IS NULL OR xact_start > "
           "cmdb_ts($1))), true) FROM pg_stat_activity WHERE datname = current_database() AND "
           "backend_type = 'client backend' AND pid <> pg_backend_pid()",
           soci::into(final), soci::use(static_cast<long long>(at.micros)));
  return final;
}

HistoricalGraphs::HistoricalGraphs(Options options)
    : HistoricalGraphs(options, [](DbSession& db, Timestamp at) {
        return std::make_shared<const graph::DependencyGraph>(LoadDependencyGraph(db, at));
      }) {}

HistoricalGraphs::HistoricalGraphs(Options options, Builder builder)
    : options_(options), builder_(std::move(builder)) {
  if (options_.max_builds == 0) options_.max_builds = 1;
}

HistoricalGraphs::GraphPtr HistoricalGraphs::At(Timestamp at,
                                                const std::function<DbSession&()>& session) {
  std::unique_lock lock(mutex_);
  if (auto it = index_.find(at.micros); it != index_.end()) {
    kept_.splice(kept_.begin(), kept_, it->second);  // now the most recently used
    ++hits_;
    return it->second->second;
  }
  if (auto it = building_.find(at.micros); it != building_.end()) {
    std::shared_future<GraphPtr> running = it->second;
    ++hits_;
    lock.unlock();
    return running.get();  // rethrows the build's failure
  }
  if (building_.size() >= options_.max_builds) {
    ++refusals_;
    throw Error(ErrorCode::kUnavailable,
                std::to_string(building_.size()) +
                    " graphs of other past instants are being rebuilt from history; retry "
                    "shortly, or ask for an instant asked for recently",
                options_.retry_after);
  }
  std::promise<GraphPtr> promise;
  building_.emplace(at.micros, promise.get_future().share());
  ++builds_;
  lock.unlock();
  DbSession* db = nullptr;
  try {
    db = &session();
  } catch (...) {
    // No connection to build on: nobody may wait for this build any longer.
    {
      std::lock_guard relock(mutex_);
      building_.erase(at.micros);
    }
    promise.set_exception(std::current_exception());
    throw;
  }
  return Build(*db, at, promise);
}

HistoricalGraphs::GraphPtr HistoricalGraphs::Build(DbSession& db, Timestamp at,
                                                   std::promise<GraphPtr>& promise) {
  try {
    // Asked before the build reads: a transaction that commits in between started after
    // `at` or was seen open here.
    const bool final = HistoryIsFinalAt(db, at);
    GraphPtr graph = builder_(db, at);
    {
      std::lock_guard lock(mutex_);
      building_.erase(at.micros);
      if (final) Keep(at.micros, graph);
    }
    promise.set_value(graph);
    return graph;
  } catch (...) {
    {
      std::lock_guard lock(mutex_);
      building_.erase(at.micros);
    }
    promise.set_exception(std::current_exception());
    throw;
  }
}

void HistoricalGraphs::Keep(std::int64_t at, GraphPtr graph) {
  if (options_.capacity == 0) return;
  kept_.emplace_front(at, std::move(graph));
  index_[at] = kept_.begin();
  while (kept_.size() > options_.capacity) {
    index_.erase(kept_.back().first);
    kept_.pop_back();
  }
}

std::uint64_t HistoricalGraphs::builds() const {
  std::lock_guard lock(mutex_);
  return builds_;
}

std::uint64_t HistoricalGraphs::hits() const {
  std::lock_guard lock(mutex_);
  return hits_;
}

std::uint64_t HistoricalGraphs::refusals() const {
  std::lock_guard lock(mutex_);
  return refusals_;
}

}  // namespace cmdb::store
