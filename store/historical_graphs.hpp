#pragma once
// Dependency graphs as they were at past instants, for `?as_of=` impact and for incident
// traces that start before the last graph change. Rebuilding one reads the whole history (a
// million-CI estate: seconds and hundreds of MB), so:
// - the graphs of recent instants are kept, least recently used first out: asking again for
//   the same instant (the picture after the JSON, a trace read twice) costs nothing;
// - requests for an instant being built wait for that build instead of starting another;
// - at most `max_builds` builds run at once; a request beyond them is refused with
//   kUnavailable and a retry-after, rather than taking the memory of one more graph.
// A graph is kept only when its instant is final: no transaction open when the build starts
// began at or before it, so nothing committed later can still change what was valid then
// (writes stamp history with clock_timestamp(), which is never before their transaction's
// start). Relation types are never changed or deleted once created, so a kept graph stays
// right when new ones appear. Thread-safe.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "graph/dependency_graph.hpp"
#include "model/timestamp.hpp"
#include "store/db_pool.hpp"

namespace cmdb::store {

class HistoricalGraphs {
 public:
  struct Options {
    std::size_t capacity = 4;    // graphs kept
    std::size_t max_builds = 2;  // builds running at once
    std::chrono::seconds retry_after{5};
  };
  using GraphPtr = std::shared_ptr<const graph::DependencyGraph>;
  // Builds the graph at an instant; LoadDependencyGraph unless a test replaces it.
  using Builder = std::function<GraphPtr(DbSession&, model::Timestamp)>;

  explicit HistoricalGraphs(Options options);
  HistoricalGraphs(Options options, Builder builder);

  // The graph as it was at `at` (not in the future), built on the session `session` gives
  // when not kept (asked for only then: a request answered from a kept graph, or waiting for
  // another's build, holds no connection). Throws kUnavailable (with retry_after) when
  // max_builds other instants are being built, and what the database throws.
  GraphPtr At(model::Timestamp at, const std::function<DbSession&()>& session);
  GraphPtr At(DbSession& db, model::Timestamp at) {
    return At(at, [&db]() -> DbSession& { return db; });
  }

  // For /metrics: graphs built, answers from kept graphs or a running build, refusals.
  std::uint64_t builds() const;
  std::uint64_t hits() const;
  std::uint64_t refusals() const;

 private:
  GraphPtr Build(DbSession& db, model::Timestamp at, std::promise<GraphPtr>& promise);

  void Keep(std::int64_t at, GraphPtr graph);  // mutex_ held

  Options options_;
  Builder builder_;
  mutable std::mutex mutex_;
  // Kept graphs, most recently used first, and an index into the list by instant.
  std::list<std::pair<std::int64_t, GraphPtr>> kept_;
  std::map<std::int64_t, std::list<std::pair<std::int64_t, GraphPtr>>::iterator> index_;
  std::map<std::int64_t, std::shared_future<GraphPtr>> building_;
  std::uint64_t builds_ = 0;
  std::uint64_t hits_ = 0;
  std::uint64_t refusals_ = 0;
};

// Whether history at `at` can no longer change: no other open transaction on this database
// started at or before it (and every session's state is visible to this role).
bool HistoryIsFinalAt(DbSession& db, model::Timestamp at);

}  // namespace cmdb::store
