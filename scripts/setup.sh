#!/usr/bin/env bash
# Installs the Debian 12 packages cmdb needs to build, run and test. Idempotent: when every
# package is present it returns in well under a second without touching apt.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libboost-json1.81-dev
  libsoci-dev libpq-dev libgraphviz-dev libre2-dev libexpat1-dev liblz4-dev
  libkainjow-mustache-dev fonts-wqy-microhei
  libgtest-dev libgmock-dev libbenchmark-dev
  postgresql-15 postgresql-client-15
  libssl-dev openssl clang-format curl jq wrk python3 python3-jsonschema
  clang libclang-rt-14-dev
  nmap ansible-core
  chromium
)

missing=()
for p in "${PACKAGES[@]}"; do
  # (postgresql-15 ships the contrib extensions, pg_trgm among them, on Debian 12.)
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js and npm run the browser tests (tests/browser): the machine's own when it has them,
# Debian's otherwise.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
