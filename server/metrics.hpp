#pragma once
// Request counters and latency histograms per route, rendered as Prometheus text.
// Thread-safe: Record() takes a short mutex.

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>

namespace cmdb::server {

class Metrics {
 public:
  // One finished request: `route` is the route pattern ("/api/v1/cis/{id}"), not the path,
  // and a method other than the standard ones counts as "OTHER", so the label set stays
  // bounded.
  void Record(const std::string& method, const std::string& route, int status, double seconds);

  // Gauges read at render time (pool in use, open connections).
  void AddGauge(std::string name, std::string help, std::function<double()> read);
  // Counters kept elsewhere, read at render time; `name` should end in _total.
  void AddCounter(std::string name, std::string help, std::function<double()> read);

  std::string Render() const;

 private:
  static constexpr std::array<double, 12> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1.0,  5.0};
  struct RouteStats {
    std::map<int, std::uint64_t> by_status;
    std::array<std::uint64_t, kBuckets.size() + 1> buckets{};
    double sum = 0;
    std::uint64_t count = 0;
  };
  struct Gauge {
    std::string help;
    std::function<double()> read;
    const char* type = "gauge";
  };
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, RouteStats> routes_;  // guarded by mutex_
  std::uint64_t errors_ = 0;                                          // guarded by mutex_
  std::map<std::string, Gauge> gauges_;                               // guarded by mutex_
};

}  // namespace cmdb::server
