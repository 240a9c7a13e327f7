#!/usr/bin/env bash
# Install Prometheus (Debian package: `prometheus` and `promtool`) for the metrics
# tests. Idempotent: does nothing when both are already installed. Runs as root (no
# sudo); the package does not start a server by itself here (no systemd): tests start
# private servers on free loopback ports (tests/tests/prometheus.rs).
set -euo pipefail

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    echo "prometheus already installed: $(command -v prometheus), $(command -v promtool)"
    exit 0
fi

if [[ "$(id -u)" != "0" ]]; then
    echo "error: run as root to install prometheus (apt-get)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends prometheus

# Where an init system started the packaged server (on :9090), stop it: tests run
# their own servers on free ports.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl stop prometheus || true
fi

command -v prometheus >/dev/null
command -v promtool >/dev/null
echo "installed: prometheus $(dpkg-query -W -f='${Version}' prometheus)"
