#include "server/metrics.hpp"

#include <array>
#include <charconv>
#include <sstream>
#include <system_error>

namespace cmdb::server {
namespace {

// The shortest text that reads back as `value` (counts and byte gauges stay exact; the
// stream's default six digits would round 1048576 to 1.04858e+06).
std::string FormatValue(double value) {
  std::array<char, 32> text{};
  const auto [end, ec] = std::to_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc{} ? std::string(text.data(), end) : std::string("NaN");
}

std::string EscapeLabel(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// The method as a label: any token is a valid HTTP method, so one a client makes up is
// "OTHER", which keeps the label set (and /metrics) bounded.
std::string MethodLabel(const std::string& method) {
  for (const char* known : {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
    if (method == known) return method;
  }
  return "OTHER";
}

}  // namespace

void Metrics::Record(const std::string& method, const std::string& route, int status,
                     double seconds) {
  std::lock_guard lock(mutex_);
  RouteStats& stats = routes_[{MethodLabel(method), route}];
  ++stats.by_status[status];
  std::size_t bucket = 0;
  while (bucket < kBuckets.size() && seconds > kBuckets[bucket]) ++bucket;
  ++stats.buckets[bucket];
  stats.sum += seconds;
  ++stats.count;
  if (status >= 500) ++errors_;
}

void Metrics::AddGauge(std::string name, std::string help, std::function<double()> read) {
  std::lock_guard lock(mutex_);
  gauges_[std::move(name)] = Gauge{std::move(help), std::move(read)};
}

void Metrics::AddCounter(std::string name, std::string help, std::function<double()> read) {
  std::lock_guard lock(mutex_);
  gauges_[std::move(name)] = Gauge{std::move(help), std::move(read), "counter"};
}

std::string Metrics::Render() const {
  std::lock_guard lock(mutex_);
  std::ostringstream out;
  out << "# HELP cmdb_http_requests_total HTTP requests by route and status.\n"
      << "# TYPE cmdb_http_requests_total counter\n";
  for (const auto& [key, stats] : routes_) {
    for (const auto& [status, count] : stats.by_status) {
      out << "cmdb_http_requests_total{method=\"" << key.first << "\",route=\""
          << EscapeLabel(key.second) << "\",status=\"" << status << "\"} " << count << "\n";
    }
  }
  out << "# HELP cmdb_http_request_duration_seconds Time from request read to response ready.\n"
      << "# TYPE cmdb_http_request_duration_seconds histogram\n";
  for (const auto& [key, stats] : routes_) {
    const std::string labels =
        "method=\"" + key.first + "\",route=\"" + EscapeLabel(key.second) + "\"";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += stats.buckets[i];
      out << "cmdb_http_request_duration_seconds_bucket{" << labels << ",le=\"" << kBuckets[i]
          << "\"} " << cumulative << "\n";
    }
    cumulative += stats.buckets[kBuckets.size()];
    out << "cmdb_http_request_duration_seconds_bucket{" << labels << ",le=\"+Inf\"} " << cumulative
        << "\n";
    out << "cmdb_http_request_duration_seconds_sum{" << labels << "} " << FormatValue(stats.sum)
        << "\n";
    out << "cmdb_http_request_duration_seconds_count{" << labels << "} " << stats.count << "\n";
  }
  out << "# HELP cmdb_http_server_errors_total Responses with a 5xx status.\n"
      << "# TYPE cmdb_http_server_errors_total counter\n"
      << "cmdb_http_server_errors_total " << errors_ << "\n";
  for (const auto& [name, gauge] : gauges_) {
    out << "# HELP " << name << " " << gauge.help << "\n# TYPE " << name << " " << gauge.type
        << "\n"
        << name << " " << FormatValue(gauge.read()) << "\n";
  }
  return out.str();
}

}  // namespace cmdb::server
