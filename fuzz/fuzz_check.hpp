#pragma once
// A property a fuzz target asserts: when it does not hold the process aborts, which libFuzzer
// reports as a crash with the input that caused it (kept under fuzz/regressions/ once fixed).

#include <cstdio>
#include <cstdlib>

#define CMDB_FUZZ_CHECK(condition)                                                       \
  do {                                                                                   \
    if (!(condition)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (false)
