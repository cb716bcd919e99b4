#!/usr/bin/env bash
# Quick start (a): install what is missing, build the release binary and run the server on its
# embedded PostgreSQL with the demo estate. Extra arguments go to `cmdb serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cmake --preset release -DCMDB_DEVELOPER_MODE=OFF >/dev/null
cmake --build --preset release --target cmdb
DATA_DIR="${CMDB_DATA_DIR:-$PWD/cmdb-data}"
if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$(dirname "$DATA_DIR")" 2>/dev/null; then
  # PostgreSQL runs as the postgres user, which cannot enter folders such as /root.
  DATA_DIR=/var/lib/cmdb/demo-data
  echo "demo: $PWD is closed to the postgres user; keeping the data in $DATA_DIR" >&2
  # ./cmdb-data links there, so cmdb-data/demo-tokens.json works from the checkout.
  if [ ! -e cmdb-data ] || [ -L cmdb-data ]; then
    mkdir -p "$DATA_DIR"
    ln -sfn "$DATA_DIR" cmdb-data
  fi
fi
exec ./build/release/server/cmdb serve --demo --data-dir "$DATA_DIR" "$@"
