#!/usr/bin/env bash
# Quick start (b): install what is missing, check formatting, build with AddressSanitizer and
# UndefinedBehaviorSanitizer (warnings are errors) and run every test. The database tests
# start their own throwaway PostgreSQL unless CMDB_TEST_DSN names one.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

echo "== format check"
git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run --Werror

echo "== layering check"
./scripts/check_layering.sh

echo "== build (asan preset, -Werror)"
cmake --preset asan -DCMDB_WARNINGS_AS_ERRORS=ON >/dev/null
# The benchmarks are built too (not run), so they cannot rot.
cmake --build --preset asan --target cmdb cmdb_unit_tests cmdb_pg_tests benchmarks

# A test binary that crashed (a sanitizer abort) cannot stop its throwaway cluster; sweep
# what earlier runs left behind, and what this one leaves, so servers do not pile up.
sweep_clusters() {
  for d in /tmp/cmdbpg-* /tmp/cmdbe2e-* /tmp/cmdbrel-*; do
    [ -d "$d" ] || continue
    for pgdata in "$d/pgdata" "$d/data/pgdata" "$d/external/pgdata" "$d/restored/pgdata"; do
      [ -f "$pgdata/postmaster.pid" ] || continue
      if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$(ls -d /usr/lib/postgresql/*/bin | tail -1)/pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true
      else
        "$(ls -d /usr/lib/postgresql/*/bin | tail -1)/pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true
      fi
    done
    rm -rf "$d"
  done
}
sweep_clusters
trap sweep_clusters EXIT

echo "== tests"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
ctest --preset all -j2 --timeout 900 "$@"

echo "== browser (the web UI walked in Debian's Chromium; screenshots in build/browser/)"
tests/browser/run.sh build/asan/server/cmdb

echo "== fuzz (each libFuzzer target for 10 s from its seeds, after its regression inputs)"
./scripts/fuzz.sh 10
