#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian 12 machine, then runs all tests.
# Usage: bash test/install-and-run.sh   (as root, or with sudo available)
set -euo pipefail
cd "$(dirname "$0")/.."

# tini (also a docker.io dependency) goes into the stand-in base image test/ops/dockerfile.test.ts builds;
# iproute2 (ip) and util-linux (nsenter) are what the agent's container networking drives.
# buildah is the third builder test/build/conformance.test.ts and bench/build-bench.ts set against docker build.
# g++, make and python3 build the native addons during npm ci: node-pty's (the agent's terminals) and binding.gyp's (mount(2) for the agent).
# tmux is the real terminal the agent's terminal tests type into and read the screen of.
# redis-sentinel and haproxy are the failover and the load balancer of test/ha/.
PACKAGES=(redis-server docker.io tini skopeo podman buildah runc busybox-static docker-registry uidmap iptables iproute2 util-linux attr zstd openssl
  g++ make python3 tmux redis-sentinel haproxy git openssh-server)
missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get -o DPkg::Lock::Timeout=120 update -q
  # With recommends, as on the machines the suite was developed on (podman's and docker's helpers).
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=120 install -y -q "${missing[@]}"
fi

npm ci --no-audit --no-fund

# The tree stays lint and format clean (ESLint with typescript-eslint, Prettier): checked before any test runs.
npm run lint

# ava's own summary is not a format CI tools read; end with one plain "N passed, N failed" line.
log=$(mktemp)
set +e
npm test 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# ava prints no "N passed" total when something failed: count its per-test marks instead.
passed=$(grep -c '^ *✔' "$log" || true); failed=$(grep -c '^ *✘' "$log" || true)
echo "ava: ${passed:-0} passed, ${failed:-0} failed"
rm -f "$log"
exit "$status"
