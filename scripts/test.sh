#!/usr/bin/env bash
# Install what the tests need, then run every check CI runs. Idempotent.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The tests read real block data from ../shared/fixtures (never copied into the repo).
if [ ! -d ../shared/fixtures ]; then
  echo "error: ../shared/fixtures (real block data) is missing next to this checkout" >&2
  exit 1
fi

export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
