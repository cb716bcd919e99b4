#pragma once
// wrk (the HTTP load generator) run from a benchmark: its requests per second, latency
// percentiles and non-2xx count, parsed from `wrk --latency`.

#include <cstdint>
#include <string>

namespace cmdb::bench {

struct WrkResult {
  double requests_per_second = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  long non_2xx = 0;
  std::string raw;  // wrk's whole output, for when parsing found nothing
};

// wrk -t1 -c<connections> -d<seconds>s --latency -s <script> against 127.0.0.1:<port>.
WrkResult Wrk(std::uint16_t port, int seconds, int connections, const std::string& script);

}  // namespace cmdb::bench
