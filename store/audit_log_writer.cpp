#include "store/audit_log_writer.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "model/error.hpp"
#include "model/log.hpp"
#include "store/audit_log_repository.hpp"

namespace cmdb::store {

AuditLogWriter::AuditLogWriter(DbPool& pool, AuditLogWriterOptions options)
    : pool_(pool), options_(options) {
  thread_ = std::thread([this] { Run(); });
}

AuditLogWriter::~AuditLogWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void AuditLogWriter::Append(model::AuditEntry entry) {
  {
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return queue_.size() < options_.max_queued; });
    queue_.push_back(std::move(entry));
    ++appended_;
  }
  wake_.notify_one();
}

void AuditLogWriter::Flush() {
  std::unique_lock lock(mutex_);
  const std::uint64_t target = appended_;
  done_.wait(lock, [&] { return finished_ >= target; });
}

std::uint64_t AuditLogWriter::written() const {
  std::lock_guard lock(mutex_);
  return written_;
}

std::uint64_t AuditLogWriter::dropped() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

void AuditLogWriter::Run() {
  std::vector<model::AuditEntry> batch;
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything written
    // Whatever queued while the previous batch was written goes in one statement.
    const std::size_t n = std::min(queue_.size(), options_.max_batch);
    batch.assign(std::make_move_iterator(queue_.begin()),
                 std::make_move_iterator(queue_.begin() + static_cast<std::ptrdiff_t>(n)));
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
    // A stop does not wait seconds per batch for a PostgreSQL that is away.
    const int attempts = stopping_ ? std::min(options_.attempts, 2) : options_.attempts;
    lock.unlock();
    done_.notify_all();  // room in the queue
    const std::size_t written = Write(batch, attempts);
    lock.lock();
    finished_ += batch.size();
    written_ += written;
    dropped_ += batch.size() - written;
    batch.clear();
    done_.notify_all();
  }
}

std::size_t AuditLogWriter::Write(const std::vector<model::AuditEntry>& batch, int attempts) {
  std::string error;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    try {
      DbSession session = pool_.Lease();
      AuditLogRepository(session).AppendMany(batch);
      return batch.size();
    } catch (const model::Error& e) {
      error = e.what();
      // A value PostgreSQL refuses (AppendMany makes text valid; nothing else is expected):
      // no retry helps, and the other lines of the batch go in one by one.
      if (e.code() == model::ErrorCode::kInvalidArgument) {
        if (batch.size() == 1) break;
        std::size_t written = 0;
        for (const model::AuditEntry& line : batch) written += Write({line}, 1);
        return written;
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  // The writes themselves are committed: the lines are lost, and the log says so loudly.
  model::Log(
      model::LogLevel::kError, "could not append to the audit log",
      {{"lines", batch.size()}, {"first_request_id", batch.front().request_id}, {"error", error}});
  return 0;
}

}  // namespace cmdb::store
