#!/usr/bin/env python3
"""Render a kustomize directory to one JSON array of its documents (for tests).

Usage: .venv-kubectl/bin/python scripts/deploy/render.py DIR

Runs `kubectl kustomize DIR` with the kubectl next to this Python (the venv that
scripts/services/kubectl.sh makes), parses the YAML it prints with PyYAML (which
kubernetes-validate brings) and prints the documents as a JSON array on stdout.
Exits 1 with kubectl's message when DIR does not render.
"""

import json
import subprocess
import sys
from pathlib import Path

import yaml


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    kubectl = Path(sys.executable).parent / "kubectl"
    rendered = subprocess.run(
        [str(kubectl), "kustomize", sys.argv[1]], capture_output=True, text=True
    )
    if rendered.returncode != 0:
        sys.stderr.write(f"kubectl kustomize {sys.argv[1]}: {rendered.stderr}")
        return 1
    documents = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc is not None]
    # default=str: a value PyYAML reads as a date stays the text it was.
    json.dump(documents, sys.stdout, indent=1, default=str)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
