#!/usr/bin/env bash
# One command from a fresh Debian/Ubuntu machine to a running registry:
# installs redis-server (for the embedded Redis) and the native addons' build tools if missing, builds Berth, and serves on port 5000
# with filesystem storage and all state under ./data.
set -euo pipefail
cd "$(dirname "$0")/.."

# redis-server for the embedded Redis; g++, make and python3 for the native addons npm ci builds (binding.gyp).
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
for tool in g++ make python3; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get -o DPkg::Lock::Timeout=120 update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=120 install -y -q --no-install-recommends "${missing[@]}"
fi

npm ci --no-audit --no-fund
npm run build
# glibc keeps up to 32 MiB of freed heap instead of handing it back and faulting it in again for the next request
# body (20-50% less CPU per pushed byte); the container image sets the same.
export GLIBC_TUNABLES="${GLIBC_TUNABLES:-glibc.malloc.trim_threshold=33554432}"
# Node's flags for the registry, as in the image: why each, in server/node-flags.ts.
exec node --single-threaded-gc dist/server/cli.js serve --port "${PORT:-5000}" --data-dir "${BERTH_DATA_DIR:-./data}" "$@"
