#!/usr/bin/env bash
# Interop tier: the release `mgraph-deploy` binary against the real GitHub Service from PyPI
# (with its GitHub API surrogate), all on loopback. See docs in README.md ("Tests").
#
# Creates (or reuses) a venv under target/interop-venv, installs the pinned packages of
# interop/requirements.txt, starts the GitHub Service, starts this service pointed at it, runs
# interop/check.py, and stops both processes by PID whatever happens.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${INTEROP_VENV:-$ROOT/target/interop-venv}"
WORK="$(mktemp -d)"
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# The GitHub Service needs Python >= 3.12; 3.11 works with --ignore-requires-python.
pick_python() {
    local candidate
    for candidate in "$HOME"/.pyenv/versions/3.12*/bin/python3 "$(command -v python3.12 || true)"; do
        if [[ -x "$candidate" ]] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    command -v python3
}

# Waits (up to $2 seconds) until file $1 has a first line; fails if process $3 died.
wait_for_line() {
    local file="$1" seconds="$2" pid="$3" waited=0
    until [[ -s "$file" ]] && [[ "$(head -c1 "$file")" != "" ]] && grep -q . "$file"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "interop: process $pid exited before it was ready" >&2
            return 1
        fi
        if (( waited >= seconds * 10 )); then
            echo "interop: process $pid not ready after ${seconds}s" >&2
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
}

requirements="$ROOT/interop/requirements.txt"
# The stamp names the venv's own path too: a venv moved or copied elsewhere has scripts whose
# first line still points at the old place, so it is made again.
stamp="$(cat "$requirements"; echo "# venv: $VENV")"
if [[ ! -f "$VENV/.installed" ]] || [[ "$(cat "$VENV/.installed")" != "$stamp" ]]; then
    python="$(pick_python)"
    echo "interop: creating $VENV with $("$python" --version)"
    rm -rf "$VENV"
    "$python" -m venv "$VENV"
    extra=()
    "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 12))' || extra=(--ignore-requires-python)
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${extra[@]}" -r "$requirements"
    printf '%s\n' "$stamp" >"$VENV/.installed"
fi

cargo build --release --locked --quiet --bin mgraph-deploy --bin mgraph-deploy-cli
BIN="$ROOT/target/release/mgraph-deploy"
CLI="$ROOT/target/release/mgraph-deploy-cli"

# The GitHub Service reads .env files upward from its working directory and misbehaves with
# AWS_REGION set: run it from the scratch directory, without it.
(cd "$WORK" && exec env -u AWS_REGION "$VENV/bin/python" "$ROOT/interop/github_service.py" \
    >"$WORK/github_service.json" 2>"$WORK/github_service.log") &
PIDS+=($!)
wait_for_line "$WORK/github_service.json" 60 "${PIDS[-1]}" || { cat "$WORK/github_service.log" >&2; exit 1; }

field() { "$VENV/bin/python" -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$WORK/github_service.json" "$1"; }

DEPLOY_KEY_NAME="x-api-key"
DEPLOY_KEY_VALUE="interop-$RANDOM$RANDOM"
env -i PATH="$PATH" \
    URL__TARGET_SERVER__GITHUB_SERVICE="$(field github_service_url)" \
    AUTH__TARGET_SERVER__GITHUB_SERVICE__KEY_NAME="$(field api_key_name)" \
    AUTH__TARGET_SERVER__GITHUB_SERVICE__KEY_VALUE="$(field api_key_value)" \
    FAST_API__AUTH__API_KEY__NAME="$DEPLOY_KEY_NAME" \
    FAST_API__AUTH__API_KEY__VALUE="$DEPLOY_KEY_VALUE" \
    DEPLOY__LISTEN="127.0.0.1:0" \
    DEPLOY__LOG_FORMAT=json \
    DEPLOY__STORE="sqlite:$WORK/history.sqlite3" \
    RUST_LOG="mgraph_deploy=trace,tower_http=debug,reqwest=debug,info" \
    "$BIN" >"$WORK/deploy.out" 2>"$WORK/deploy.log" &
PIDS+=($!)
wait_for_line "$WORK/deploy.out" 30 "${PIDS[-1]}" || { cat "$WORK/deploy.log" >&2; exit 1; }
DEPLOY_URL="$(sed -n 's/^mgraph-deploy listening on //p' "$WORK/deploy.out" | head -1)"
echo "interop: GitHub Service at $(field github_service_url), mgraph-deploy at $DEPLOY_URL"

"$VENV/bin/python" "$ROOT/interop/check.py" "$WORK/github_service.json" "$DEPLOY_URL" \
    "$DEPLOY_KEY_NAME" "$DEPLOY_KEY_VALUE" "$WORK/deploy.log" "$CLI" "$WORK/history.sqlite3"
