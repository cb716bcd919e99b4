#include "store/database_supervisor.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>

#include <libpq-fe.h>
#include <poll.h>

#include "model/log.hpp"
#include "store/db_pool.hpp"
#include "store/embedded_postgres.hpp"

namespace cmdb::store {

using Clock = std::chrono::steady_clock;

std::chrono::seconds RestartBackoff::NextDelay(Clock::time_point now) {
  if (healthy_since_ && now - *healthy_since_ >= stable_after_) streak_ = 0;
  healthy_since_.reset();
  std::chrono::seconds delay{0};
  if (streak_ > 0) {
    delay = first_;
    for (int i = 1; i < streak_ && delay < max_; ++i) delay *= 2;
    delay = std::min(delay, max_);
  }
  ++streak_;
  return delay;
}

const char* HealthName(DatabaseHealth health) {
  switch (health) {
    case DatabaseHealth::kUp:
      return "ok";
    case DatabaseHealth::kDown:
      return "down";
    case DatabaseHealth::kRestarting:
      return "restarting";
  }
  return "down";
}

DatabaseSupervisor::DatabaseSupervisor(std::string dsn, EmbeddedPostgres* embedded,
                                       std::vector<DbPool*> pools, SupervisorOptions options)
    : dsn_(std::move(dsn)),
      embedded_(embedded),
      pools_(std::move(pools)),
      options_(options),
      backoff_(options.first_backoff, options.max_backoff, options.stable_after) {
  status_.supervised = embedded_ != nullptr;
}

DatabaseSupervisor::~DatabaseSupervisor() { Stop(); }

void DatabaseSupervisor::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void DatabaseSupervisor::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

DatabaseStatus DatabaseSupervisor::Status() const {
  std::lock_guard lock(mutex_);
  return status_;
}

bool DatabaseSupervisor::Sleep(std::chrono::milliseconds duration) {
  std::unique_lock lock(mutex_);
  return !wake_.wait_for(lock, duration, [this] { return stopping_; });
}

bool DatabaseSupervisor::Probe(std::string& error, bool& timed_out) {
  timed_out = false;
  // A new connection each time: a server that still answers on old connections but takes no
  // new ones (a hung postmaster) is down for the pool, which must be able to reconnect. One
  // connection a second costs the server about a millisecond.
  const std::string timeout = std::to_string(std::max<long long>(
      2, std::chrono::ceil<std::chrono::seconds>(options_.probe_timeout).count()));
  // The dsn may be a URI or keywords: given as dbname it is expanded, and the timeout after it
  // takes precedence over one it might hold.
  const std::array<const char*, 3> keywords = {"dbname", "connect_timeout", nullptr};
  const std::array<const char*, 3> values = {dsn_.c_str(), timeout.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keywords.data(), values.data(), 1);
  struct Finish {
    PGconn* conn;
    ~Finish() { PQfinish(conn); }
  } finish{conn};
  auto message = [conn] {
    std::string text = PQerrorMessage(conn);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
  };
  if (PQstatus(conn) != CONNECTION_OK) {
    error = message();
    // A server with every connection slot taken is busy, not down.
    if (error.find("too many clients") != std::string::npos ||
        error.find("remaining connection slots") != std::string::npos) {
      return true;
    }
    timed_out = error.find("timeout expired") != std::string::npos;
    return false;
  }
  const auto deadline = Clock::now() + options_.probe_timeout;
  bool answered = false;
  if (PQsendQuery(conn, "SELECT 1") == 1) {
    while (true) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) {
        timed_out = true;
        break;
      }
      pollfd fd{PQsocket(conn), POLLIN, 0};
      const int ready = poll(&fd, 1, static_cast<int>(left.count()));
      if (ready < 0 && errno != EINTR) break;
      if (ready <= 0) continue;
      if (PQconsumeInput(conn) == 0) break;
      if (PQisBusy(conn) != 0) continue;
      answered = true;
      while (PGresult* result = PQgetResult(conn)) {
        if (PQresultStatus(result) != PGRES_TUPLES_OK) answered = false;
        PQclear(result);
      }
      break;
    }
  }
  if (answered) return true;
  error = timed_out ? "no answer to SELECT 1 within " +
                          std::to_string(options_.probe_timeout.count()) + " ms"
                    : message();
  return false;
}

void DatabaseSupervisor::MarkDown(const std::string& error, DatabaseHealth health) {
  bool went_down = false;
  {
    std::lock_guard lock(mutex_);
    went_down = status_.health == DatabaseHealth::kUp;
    if (went_down) {
      ++status_.outages;
      status_.down_since = model::Timestamp::Now();
    }
    status_.health = health;
    status_.last_error = error;
  }
  const std::string detail = embedded_ != nullptr
                                 ? "the embedded PostgreSQL is being restarted; try again"
                                 : "the database is unreachable; try again";
  for (DbPool* pool : pools_) pool->SetDown(detail, options_.retry_after);
  if (went_down) {
    model::Log(model::LogLevel::kError, "the database is down", {{"error", error}});
  }
}

void DatabaseSupervisor::MarkUp() {
  model::Timestamp down_since;
  {
    std::lock_guard lock(mutex_);
    if (status_.health == DatabaseHealth::kUp) return;
    down_since = status_.down_since;
    status_.health = DatabaseHealth::kUp;
    status_.down_since = {};
  }
  backoff_.Recovered(Clock::now());
  for (DbPool* pool : pools_) pool->SetUp();
  const double seconds =
      static_cast<double>(model::Timestamp::Now().micros - down_since.micros) / 1e6;
  model::Log(model::LogLevel::kInfo, "the database answers again",
             {{"outage_seconds", std::round(seconds * 10) / 10}});
}

void DatabaseSupervisor::RestartEmbedded() {
  const std::chrono::seconds delay = backoff_.NextDelay(Clock::now());
  if (delay.count() > 0) {
    model::Log(
        model::LogLevel::kWarn, "restarting the embedded PostgreSQL after a pause",
        {{"seconds", static_cast<std::int64_t>(delay.count())}, {"attempt", backoff_.streak()}});
    if (!Sleep(delay)) return;
  }
  try {
    embedded_->Restart();
  } catch (const std::exception& e) {
    std::lock_guard lock(mutex_);
    ++status_.failed_restarts;
    status_.last_error = e.what();
    model::Log(model::LogLevel::kError, "restarting the embedded PostgreSQL failed",
               {{"error", e.what()}});
    return;
  }
  std::lock_guard lock(mutex_);
  ++status_.restarts;
  status_.last_restart = model::Timestamp::Now();
  model::Log(model::LogLevel::kWarn, "restarted the embedded PostgreSQL",
             {{"restarts", static_cast<std::int64_t>(status_.restarts)}});
}

void DatabaseSupervisor::Loop() {
  int hung = 0;  // probes in a row that a live postmaster did not answer
  while (true) {
    std::string error;
    bool timed_out = false;
    if (Probe(error, timed_out)) {
      hung = 0;
      MarkUp();
      if (!Sleep(options_.interval)) return;
      continue;
    }
    if (embedded_ == nullptr) {
      // Nothing to restart: wait for the server to come back.
      if (!timed_out || ++hung >= options_.unresponsive_probes)
        MarkDown(error, DatabaseHealth::kDown);
      if (!Sleep(options_.interval)) return;
      continue;
    }
    const bool dead = embedded_->PostmasterPid() == 0;
    if (timed_out) ++hung;
    if (dead || hung >= options_.unresponsive_probes) {
      hung = 0;
      MarkDown(dead ? "the postmaster is gone: " + error : error, DatabaseHealth::kRestarting);
      RestartEmbedded();
      {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
      }
      continue;  // probed at once: up as soon as it answers
    }
    // Alive and refusing connections (starting up, recovering): wait for it.
    if (!timed_out) MarkDown(error, DatabaseHealth::kDown);
    if (!Sleep(options_.interval)) return;
  }
}

}  // namespace cmdb::store
