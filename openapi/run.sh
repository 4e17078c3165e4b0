#!/usr/bin/env bash
# OpenAPI tier, against the offline local stack (the service in front of the GitHub Service
# emulator) on loopback:
#   1. the served /openapi.json is valid OpenAPI 3.1 (openapi-spec-validator);
#   2. /docs renders every documented operation in headless Chromium, network limited to
#      loopback (docs_page.py); Debian's chromium is installed when missing;
#   3. schemathesis fuzzes every operation with all of its checks and hooks.py's own (no sealed
#      blob of a request comes back), at least 5,000 generated cases; zero failures. A failure
#      prints its reproduction (curl and `st replay`) and the run's seed (rerun with SEED=...).
#
# Creates (or reuses) a venv under target/openapi-venv with openapi/requirements.txt.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${OPENAPI_VENV:-$ROOT/target/openapi-venv}"
MAX_EXAMPLES="${MAX_EXAMPLES:-250}"
MIN_CASES=5000
WORK="$(mktemp -d)"
STACK_PID=""

cleanup() {
    if [[ -n "$STACK_PID" ]]; then
        kill "$STACK_PID" 2>/dev/null || true
        wait "$STACK_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# The stamp names the venv's own path too: a venv moved or copied elsewhere has scripts whose
# first line still points at the old place, so it is made again.
stamp="$(cat "$ROOT/openapi/requirements.txt"; echo "# venv: $VENV")"
if [[ ! -f "$VENV/.installed" ]] || [[ "$(cat "$VENV/.installed")" != "$stamp" ]]; then
    echo "openapi: creating $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
        -r "$ROOT/openapi/requirements.txt"
    printf '%s\n' "$stamp" >"$VENV/.installed"
fi

if ! command -v chromium >/dev/null; then
    echo "openapi: installing Debian's chromium"
    SUDO=""
    [[ "$(id -u)" == 0 ]] || SUDO="sudo"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

cargo build --locked --quiet -p mgraph-deploy-local
"$ROOT/target/debug/mgraph-deploy-local" --listen 127.0.0.1:0 --log warn >"$WORK/stack" 2>&1 &
STACK_PID=$!
for _ in $(seq 1 100); do
    grep -q "^  GitHub PAT" "$WORK/stack" && break
    kill -0 "$STACK_PID" || { cat "$WORK/stack"; exit 1; }
    sleep 0.1
done
URL="$(awk '/^  Deploy Service/ {print $3}' "$WORK/stack")"
read -r KEY_NAME KEY_VALUE < <(awk '/^  API key/ {sub(":", "", $3); print $3, $4}' "$WORK/stack")
PAT="$(awk '/^  GitHub PAT/ {print $3}' "$WORK/stack")"

echo "== openapi: the served document is valid OpenAPI 3.1"
"$VENV/bin/python" - "$URL/openapi.json" "$WORK/openapi.json" <<'PY'
import sys, urllib.request
urllib.request.urlretrieve(sys.argv[1], sys.argv[2])
PY
"$VENV/bin/openapi-spec-validator" "$WORK/openapi.json"

echo "== openapi: /docs in headless Chromium, network limited to loopback"
"$VENV/bin/python" "$ROOT/openapi/docs_page.py" "$URL"

echo "== openapi: schemathesis, every operation, all checks"
SEED_ARGS=()
[[ -n "${SEED:-}" ]] && SEED_ARGS=(--seed "$SEED")
status=0
(
    cd "$ROOT/openapi"
    DEPLOY_URL="$URL" DEPLOY_API_KEY_NAME="$KEY_NAME" DEPLOY_API_KEY_VALUE="$KEY_VALUE" \
        DEPLOY_PAT="$PAT" PYTHONPATH="$ROOT/openapi" \
        "$VENV/bin/schemathesis" --config-file "$ROOT/openapi/schemathesis.toml" run \
        "$URL/openapi.json" --header "$KEY_NAME: $KEY_VALUE" --checks all \
        --max-examples "$MAX_EXAMPLES" --no-color "${SEED_ARGS[@]}"
) >"$WORK/schemathesis" 2>&1 || status=$?
cases="$(sed -n 's/^ *\([0-9][0-9]*\) generated.*/\1/p' "$WORK/schemathesis" | tail -1)"
if [[ "$status" != 0 ]]; then
    cat "$WORK/schemathesis"
    echo "openapi: schemathesis failed (exit $status)" >&2
    exit 1
fi
tail -n 25 "$WORK/schemathesis"
if [[ -z "$cases" ]] || (( cases < MIN_CASES )); then
    echo "openapi: only ${cases:-0} cases were generated; at least $MIN_CASES are required" >&2
    exit 1
fi
echo "openapi: $cases generated cases, no failure"
