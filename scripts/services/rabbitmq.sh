#!/usr/bin/env bash
# Install RabbitMQ (Debian package) for the AMQP transport tests. Idempotent: does
# nothing when the server is already installed. Runs as root (no sudo); the package
# does not start a broker by itself: tests start private brokers (tests/src/rabbit.rs).
set -euo pipefail

SERVER=/usr/lib/rabbitmq/bin/rabbitmq-server

if [[ -x "$SERVER" ]]; then
    echo "rabbitmq-server already installed: $SERVER"
    exit 0
fi

if [[ "$(id -u)" != "0" ]]; then
    echo "error: run as root to install rabbitmq-server (apt-get)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends rabbitmq-server

# The Debian package may start (or try to start) a system broker on 5672 through the
# init system; tests run their own brokers on free ports, so stop it if it runs.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet rabbitmq-server 2>/dev/null; then
    systemctl stop rabbitmq-server || true
fi

test -x "$SERVER"
echo "installed: $SERVER ($(dpkg-query -W -f='${Version}' rabbitmq-server))"
