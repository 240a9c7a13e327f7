#!/usr/bin/env bash
# Install what the tests need (RabbitMQ, S3 test servers, Prometheus, kubectl), then run
# every check CI runs. Idempotent: a second run installs nothing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The tests read real block data from ../shared/fixtures (never copied into the repo).
if [ ! -d ../shared/fixtures ]; then
  echo "error: ../shared/fixtures (real block data) is missing next to this checkout" >&2
  exit 1
fi

bash scripts/services/rabbitmq.sh
bash scripts/services/s3.sh
bash scripts/services/prometheus.sh
bash scripts/services/schemathesis.sh
bash scripts/services/vulkan.sh
bash scripts/services/kubectl.sh

# GPU kernel tests run on the first Vulkan adapter: lavapipe where there is no GPU.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/proofline-xdg}"
mkdir -p -m 0700 "$XDG_RUNTIME_DIR"

export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Broker and S3 tests start their own servers; a few at a time is plenty on 2 cores.
cargo test --workspace --locked -- --test-threads 3
