#include "store/ci_reader.hpp"

#include <unordered_map>

#include "store/ci_rows.hpp"
#include "store/db_pool.hpp"
#include "store/pg.hpp"
#include "store/sql.hpp"

namespace cmdb::store {

using model::CiId;
using model::ConfigurationItem;

BatchedCiReader::BatchedCiReader(const std::string& connection_string, std::size_t threads,
                                 std::size_t max_batch)
    : pool_(std::make_unique<DbPool>(connection_string, std::max<std::size_t>(1, threads))),
      max_batch_(std::max<std::size_t>(1, max_batch)) {
  for (std::size_t i = 0; i < pool_->size(); ++i) threads_.emplace_back([this] { Run(); });
}

BatchedCiReader::~BatchedCiReader() { Stop(); }

bool BatchedCiReader::Read(CiId id, Done done) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
    queue_.push_back({id, std::move(done)});
  }
  wake_.notify_one();
  return true;
}

void BatchedCiReader::Stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

std::size_t BatchedCiReader::batches() const {
  std::lock_guard lock(mutex_);
  return batches_;
}

std::size_t BatchedCiReader::reads() const {
  std::lock_guard lock(mutex_);
  return reads_;
}

void BatchedCiReader::Run() {
  std::vector<Pending> batch;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued was answered
      const std::size_t n = std::min(queue_.size(), max_batch_);
      for (std::size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      ++batches_;
      reads_ += n;
    }
    Answer(batch);
    batch.clear();
  }
}

void BatchedCiReader::Answer(std::vector<Pending>& batch) {
  std::vector<std::int64_t> ids;
  ids.reserve(batch.size());
  std::unordered_map<CiId, int> readers;  // reads of each id in the batch
  for (const Pending& p : batch) {
    ids.push_back(p.id);
    ++readers[p.id];
  }
  std::unordered_map<CiId, ConfigurationItem> found;
  found.reserve(batch.size());
  std::exception_ptr error;
  try {
    DbSession session = pool_->Lease();
    static const std::string query = std::string("SELECT ") + kCiColumns +
                                     " FROM configuration_items c WHERE c.id = ANY($1::bigint[])";
    // Prepared once per connection: this is the query of most requests, read through libpq
    // (pg::ForEachPreparedRow says why).
    pg::ForEachPreparedRow(session, "ci_by_ids", query, {sql::IdArray(ids)},
                           [&](const pg::Fields& fields) {
                             ConfigurationItem ci = CiFromText(CiRowTextOf(fields));
                             const CiId id = ci.id;
                             found.emplace(id, std::move(ci));
                           });
  } catch (...) {
    error = std::current_exception();
  }
  for (Pending& p : batch) {
    std::optional<ConfigurationItem> ci;
    if (!error) {
      if (auto it = found.find(p.id); it != found.end()) {
        // The last reader of an id takes the CI; others (the same id twice) get a copy.
        if (--readers[p.id] == 0) {
          ci = std::move(it->second);
        } else {
          ci = it->second;
        }
      }
    }
    // `done` belongs to the caller: what it throws is its own failure, not the batch's.
    try {
      p.done(std::move(ci), error);
    } catch (...) {  // NOLINT(bugprone-empty-catch): nothing to answer to any more
    }
  }
}

}  // namespace cmdb::store
