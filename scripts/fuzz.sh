#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, the fuzz preset) and runs each for SECONDS (default 10)
# from its seeds (tests/fixtures), after replaying every input that once crashed it
# (fuzz/regressions/<target>/). Fails on any crash, leak, sanitizer report or broken property.
#   ./scripts/fuzz.sh            # 10 s per target, as ./scripts/test.sh runs it
#   ./scripts/fuzz.sh 600        # a long run; the corpus grows in build/fuzz/corpus/
#   ./scripts/fuzz.sh 0 1000000  # until 1,000,000 executions per target (docs/reliability.md)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
runs=${2:-0}
targets=(fuzz_json fuzz_merge_patch fuzz_csv fuzz_nmap fuzz_ansible fuzz_agent fuzz_query fuzz_render fuzz_audit_rule fuzz_report_writers)

echo "== build (fuzz preset, clang)"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz

seeds_of() {
  case "$1" in
    fuzz_nmap) ls tests/fixtures/discovery/*.xml ;;
    fuzz_ansible) ls tests/fixtures/discovery/ansible_*.json ;;
    *) ls "tests/fixtures/fuzz/${1#fuzz_}"/* ;;
  esac
}

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# Graphviz, Pango and fontconfig keep process-wide caches; the same suppressions as the tests.
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp"
for target in "${targets[@]}"; do
  binary="build/fuzz/fuzz/$target"
  corpus="build/fuzz/corpus/$target"
  mkdir -p "$corpus"
  seeds_of "$target" | xargs -I{} cp {} "$corpus/"
  if compgen -G "fuzz/regressions/$target/*" >/dev/null; then
    "$binary" fuzz/regressions/"$target"/* >/dev/null 2>&1 || {
      echo "$target: a regression input crashes again:"; "$binary" fuzz/regressions/"$target"/*; exit 1; }
  fi
  args=(-max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="build/fuzz/$target-")
  if [ "$runs" -gt 0 ]; then args+=(-runs="$runs"); else args+=(-max_total_time="$seconds"); fi
  log="build/fuzz/$target.log"
  if ! "$binary" "${args[@]}" "$corpus" >"$log" 2>&1; then
    echo "$target FAILED; the input is build/fuzz/$target-*; log:"
    tail -40 "$log"
    exit 1
  fi
  execs=$(grep -ao 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  speed=$(grep -ao 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -ao 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
  printf '%-18s %10s executions  %7s/s  coverage %5s  0 crashes\n' "$target" "$execs" "$speed" "$cov"
done
