#!/usr/bin/env bash
# Install schemathesis 4.32 (idempotent) into a Python venv at <repo>/.venv-schemathesis
# (git-ignored). The serve test (leader/tests/serve.rs) runs its `st` against the
# service's /openapi.json: no 5xx, every response matching the document.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT="$PWD"
VENV="$ROOT/.venv-schemathesis"

# The output is read whole before matching (`st | grep -q` under pipefail can fail when
# grep exits first and `st` dies of SIGPIPE).
version=$("$VENV/bin/st" --version 2>/dev/null || true)
if ! grep -q ' 4\.32\.' <<<"$version"; then
  echo "installing schemathesis 4.32 into .venv-schemathesis" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'schemathesis==4.32.*'
fi
"$VENV/bin/st" --version >/dev/null

echo "schemathesis ready: .venv-schemathesis/bin/st" >&2
