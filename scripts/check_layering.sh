#!/usr/bin/env bash
# Fails when the folders' one-way layering is broken (docs/architecture.md):
#   server -> {jobs, ui, import, discovery, auth} -> store -> {graph, audit} -> model; ui -> reports
#   jobs -> {import, discovery}; discovery (pure) -> model
# - a folder includes only its own headers and those of the folders below it;
# - SOCI and libpq are included in store/ only, Beast and Asio in server/http_server.cpp only,
#   Graphviz in reports/graphviz_renderer.cpp only.
# tests/, bench/ and fuzz/ reach into every layer on purpose and are not checked.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A allowed=(
  [model]="model"
  [graph]="graph model"
  [audit]="audit model"
  [discovery]="discovery model"
  [store]="store graph audit model"
  [auth]="auth store graph audit model"
  [import]="import store graph audit model"
  [reports]="reports store graph audit model"
  [ui]="ui reports model"
  [jobs]="jobs import discovery store graph audit model"
  [server]="server auth jobs ui reports import discovery store graph audit model"
)

failures=0
fail() {
  echo "layering: $1" >&2
  failures=$((failures + 1))
}

for layer in "${!allowed[@]}"; do
  [ -d "$layer" ] || { fail "folder $layer/ is missing"; continue; }
  while IFS= read -r -d '' file; do
    while IFS= read -r line; do
      target=${line#*\"}
      target=${target%%/*}
      case " ${allowed[$layer]} " in
        *" $target "*) ;;
        *) fail "$file includes \"$target/...\": $layer/ may include only: ${allowed[$layer]}" ;;
      esac
    done < <(grep -E '^#include "[a-z_]+/' "$file" || true)
    if [ "$layer" != store ] && grep -qE '^#include <(soci/|libpq-fe\.h)' "$file"; then
      fail "$file includes SOCI or libpq, which only store/ may"
    fi
    if [ "$file" != server/http_server.cpp ] && grep -qE '^#include <boost/(beast|asio)' "$file"; then
      fail "$file includes Beast or Asio, which only server/http_server.cpp may"
    fi
    if [ "$file" != reports/graphviz_renderer.cpp ] && grep -qE '^#include <graphviz/' "$file"; then
      fail "$file includes Graphviz, which only reports/graphviz_renderer.cpp may"
    fi
  done < <(find "$layer" -name '*.cpp' -print0 -o -name '*.hpp' -print0)
done

if [ "$failures" -gt 0 ]; then
  echo "layering: $failures problem(s)" >&2
  exit 1
fi
echo "layering: ok"
