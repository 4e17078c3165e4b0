#!/usr/bin/env bash
# Prints the bin directory of a venv (target/deploy-venv) holding the pinned tools of
# deploy/requirements.txt, creating or updating it when the requirements changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DEPLOY_VENV:-$ROOT/target/deploy-venv}"
REQUIREMENTS="$ROOT/deploy/requirements.txt"
STAMP="$VENV/.requirements"

# The stamp names the venv's own path too: a venv moved or copied elsewhere has scripts whose
# first line still points at the old place, so it is made again.
WANTED="$(cat "$REQUIREMENTS"; echo "# venv: $VENV")"
if [[ ! -f "$STAMP" ]] || [[ "$(cat "$STAMP")" != "$WANTED" ]]; then
    rm -rf "$VENV"
    python3 -m venv "$VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
        -r "$REQUIREMENTS" >&2
    printf '%s\n' "$WANTED" >"$STAMP"
fi
echo "$VENV/bin"
