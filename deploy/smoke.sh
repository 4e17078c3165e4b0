#!/usr/bin/env bash
# Smoke test of a deployed (or local) service: health answers, the API key is required, and with
# it the GitHub Service's public key is served.
#
# Usage: deploy/smoke.sh URL
# The API key comes from DEPLOY_SERVICE__API_KEY__NAME / __VALUE when both are set (as for the
# CLI), else from the Secrets Manager secret DEPLOY_SECRET_ID (read with the AWS CLI). Under
# GitHub Actions the key's value is masked in the log. A fresh custom domain may take a minute to
# resolve, so health is retried for up to SMOKE_WAIT_SECONDS (default 120).
set -euo pipefail

URL="${1:?usage: deploy/smoke.sh URL}"
URL="${URL%/}"
WAIT="${SMOKE_WAIT_SECONDS:-120}"

if [[ -n "${DEPLOY_SERVICE__API_KEY__NAME:-}" && -n "${DEPLOY_SERVICE__API_KEY__VALUE:-}" ]]; then
    KEY_NAME="$DEPLOY_SERVICE__API_KEY__NAME"
    KEY_VALUE="$DEPLOY_SERVICE__API_KEY__VALUE"
else
    : "${DEPLOY_SECRET_ID:?set DEPLOY_SERVICE__API_KEY__NAME and __VALUE, or DEPLOY_SECRET_ID}"
    SECRET="$(aws secretsmanager get-secret-value --secret-id "$DEPLOY_SECRET_ID" \
        --query SecretString --output text)"
    KEY_NAME="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["FAST_API__AUTH__API_KEY__NAME"])' "$SECRET")"
    KEY_VALUE="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["FAST_API__AUTH__API_KEY__VALUE"])' "$SECRET")"
    unset SECRET
fi
if [[ -n "${GITHUB_ACTIONS:-}" ]]; then
    echo "::add-mask::$KEY_VALUE"
fi

BODY="$(mktemp)"
trap 'rm -f "$BODY"' EXIT

# get PATH [HEADER]: prints the HTTP status; the body goes to $BODY.
get() {
    local args=(--silent --show-error --max-time 30 --output "$BODY" --write-out '%{http_code}')
    if [[ $# -gt 1 ]]; then
        args+=(--header "$2")
    fi
    curl "${args[@]}" "$URL$1" || echo "000"
}

fail() {
    echo "smoke: FAILED: $*" >&2
    exit 1
}

waited=0
until status="$(get /info/health)" && [[ "$status" == 200 ]]; do
    if (( waited >= WAIT )); then
        fail "GET /info/health answered $status after ${WAIT} s: $(head -c 300 "$BODY")"
    fi
    sleep 5
    waited=$((waited + 5))
done
python3 -c 'import json,sys; assert json.load(open(sys.argv[1])) == {"status": "ok"}' "$BODY" ||
    fail "GET /info/health body: $(head -c 300 "$BODY")"
echo "smoke: GET /info/health -> 200 {\"status\": \"ok\"}"

status="$(get /public-keys/github)"
[[ "$status" == 401 ]] || fail "GET /public-keys/github without the API key answered $status, not 401"
echo "smoke: GET /public-keys/github without the API key -> 401"

status="$(get /public-keys/github "$KEY_NAME: $KEY_VALUE")"
[[ "$status" == 200 ]] || fail "GET /public-keys/github with the API key answered $status: $(head -c 300 "$BODY")"
python3 - "$BODY" <<'PY' || fail "GET /public-keys/github body: $(head -c 300 "$BODY")"
import json, re, sys
body = json.load(open(sys.argv[1]))
assert re.fullmatch(r"[0-9a-f]{64}", body["public_key"]), body
assert body["algorithm"] == "NaCl/Curve25519/SealedBox", body
PY
echo "smoke: GET /public-keys/github with the API key -> 200, a 32-byte public key"
echo "smoke: $URL passed"
