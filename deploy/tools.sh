#!/usr/bin/env bash
# Prints the bin directory of a venv (target/deploy-venv) holding the pinned tools of
# deploy/requirements.txt, creating or updating it when the requirements changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DEPLOY_VENV:-$ROOT/target/deploy-venv}"
REQUIREMENTS="$ROOT/deploy/requirements.txt"
STAMP="$VENV/.requirements"

if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV" >&2
fi
if ! cmp -s "$REQUIREMENTS" "$STAMP"; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
        -r "$REQUIREMENTS" >&2
    cp "$REQUIREMENTS" "$STAMP"
fi
echo "$VENV/bin"
