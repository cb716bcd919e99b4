#!/usr/bin/env bash
# Runs the web UI's browser walk (walk.mjs) against `cmdb serve --demo` on a throwaway data
# folder: installs the pinned npm packages (puppeteer-core never downloads a browser; Debian's
# chromium is used), starts the server, walks, stops it. Screenshots go to build/browser/.
#   tests/browser/run.sh build/asan/server/cmdb
set -euo pipefail
binary=$(realpath "$1")
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --silent >/dev/null
dir=$(mktemp -d /tmp/cmdbe2e-XXXXXX)
chmod 755 "$dir"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$binary" serve --demo --data-dir "$dir/data" --listen "127.0.0.1:$port" --no-request-log >"$dir/server.log" 2>&1 &
server=$!
stop() {
  kill -TERM "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$dir"
}
trap stop EXIT
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break
  sleep 0.5
done
CMDB_URL="http://127.0.0.1:$port" CMDB_TOKENS="$dir/data/demo-tokens.json" \
  CMDB_SCREENSHOTS="$(realpath ../..)/build/browser" node walk.mjs || {
  echo "server log:"; tail -20 "$dir/server.log"; exit 1; }
