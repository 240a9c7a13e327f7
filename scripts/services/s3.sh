#!/usr/bin/env bash
# Install the S3-compatible test servers (idempotent):
#   - moto[server] in a Python venv at <repo>/.venv-s3 (in-memory S3),
#   - s3s-fs 0.14.1 into <repo>/.tools/bin (on-disk S3 that checks signatures).
# Both paths are git-ignored. The tests in tests/tests/s3_store.rs use them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT="$PWD"

if [ ! -x "$ROOT/.venv-s3/bin/moto_server" ]; then
  echo "installing moto[server] into .venv-s3" >&2
  python3 -m venv "$ROOT/.venv-s3"
  "$ROOT/.venv-s3/bin/pip" install --quiet --disable-pip-version-check 'moto[server]'
fi
"$ROOT/.venv-s3/bin/moto_server" --help >/dev/null

if [ ! -x "$ROOT/.tools/bin/s3s-fs" ]; then
  echo "installing s3s-fs 0.14.1 into .tools" >&2
  # 0.17 needs a newer rustc than the project's 1.95. Build in a private target dir
  # so the workspace's shared one is not disturbed.
  cargo install --locked --root "$ROOT/.tools" s3s-fs@0.14.1 --features binary
fi
"$ROOT/.tools/bin/s3s-fs" --help >/dev/null

echo "S3 test servers ready: .venv-s3/bin/moto_server, .tools/bin/s3s-fs" >&2
