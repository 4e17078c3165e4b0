#!/usr/bin/env bash
# MCP tier: `mgraph-deploy-cli mcp` driven by the official MCP Python SDK's client (PyPI `mcp`,
# pinned in mcp/requirements.txt), against the offline local stack on loopback. See README.md
# ("Tests").
#
# Creates (or reuses) a venv under target/mcp-venv, builds the CLI and the local stack, starts
# the stack, runs mcp/check.py, and stops the stack whatever happens.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MCP_VENV:-$ROOT/target/mcp-venv}"
STACK_OUT="$(mktemp)"
STACK_PID=""

cleanup() {
    [[ -n "$STACK_PID" ]] && kill -TERM "$STACK_PID" 2>/dev/null && wait "$STACK_PID" 2>/dev/null
    rm -f "$STACK_OUT"
}
trap cleanup EXIT

requirements="$ROOT/mcp/requirements.txt"
stamp="$(cat "$requirements"; echo "# venv: $VENV")"
if [[ ! -f "$VENV/.installed" ]] || [[ "$(cat "$VENV/.installed")" != "$stamp" ]]; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    echo "$stamp" >"$VENV/.installed"
fi

cargo build --locked --quiet -p mgraph-deploy-local -p mgraph-deploy-client
"$ROOT/target/debug/mgraph-deploy-local" --listen 127.0.0.1:0 >"$STACK_OUT" 2>&1 &
STACK_PID=$!
for _ in $(seq 1 100); do
    grep -q "^  its API key" "$STACK_OUT" && break
    kill -0 "$STACK_PID" || { cat "$STACK_OUT"; exit 1; }
    sleep 0.1
done
deploy_url="$(awk '/^  Deploy Service/ {print $3}' "$STACK_OUT")"
read -r key_name key_value < <(awk '/^  API key/ {sub(":", "", $3); print $3, $4}' "$STACK_OUT")
emulator_url="$(awk '/^  GitHub Service/ {print $3}' "$STACK_OUT")"
read -r emulator_key_name emulator_key_value < <(awk '/^  its API key/ {sub(":", "", $4); print $4, $5}' "$STACK_OUT")
pat="$(awk '$1 == "admin" {print $2}' "$STACK_OUT")"
echo "mcp: local stack at $deploy_url, emulator at $emulator_url"

"$VENV/bin/python" "$ROOT/mcp/check.py" "$ROOT/target/debug/mgraph-deploy-cli" \
    "$deploy_url" "$key_name" "$key_value" "$emulator_url" "$emulator_key_name" "$emulator_key_value" "$pat"
