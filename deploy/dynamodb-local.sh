#!/usr/bin/env bash
# Moto's DynamoDB stand-in on a free loopback port, for the history store's tests: creates a venv
# with moto's server (pinned in deploy/requirements-moto.txt) in target/moto-venv, starts it,
# creates history tables as deploy/template.yaml defines them (key pk/sk, TTL on expires_at),
# and prints the environment that points the service and the tests at it:
#
#   eval "$(bash deploy/dynamodb-local.sh [TABLE ...])"   # sets AWS_*, MGRAPH_DYNAMODB_TABLE
#   ...                                                    # (the first TABLE), MOTO_PID
#   kill "$MOTO_PID"
#
# TABLE defaults to mgraph-deploy-history-test.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/target/moto-venv"
REQUIREMENTS="$ROOT/deploy/requirements-moto.txt"
WANTED="$(cat "$REQUIREMENTS"; echo "# venv: $VENV")"
if [[ ! -f "$VENV/.requirements" ]] || [[ "$(cat "$VENV/.requirements")" != "$WANTED" ]]; then
    rm -rf "$VENV"
    python3 -m venv "$VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS" >&2
    printf '%s\n' "$WANTED" >"$VENV/.requirements"
fi

PORT="$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
LOG="$(mktemp)"
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$LOG" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null; cat "$LOG" >&2' ERR
TABLES=("${@:-mgraph-deploy-history-test}")
# A session token as Lambda's credentials carry one: the log tests search for it.
SESSION_TOKEN="moto-session-token-$RANDOM$RANDOM$RANDOM"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN="$SESSION_TOKEN"
export AWS_REGION=eu-west-2 AWS_DEFAULT_REGION=eu-west-2 AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$PORT"
"$VENV/bin/python" - "${TABLES[@]}" >&2 <<'PY'
import sys, time, boto3, botocore
client = boto3.client("dynamodb")
for _ in range(100):
    try:
        client.list_tables()
        break
    except botocore.exceptions.EndpointConnectionError:
        time.sleep(0.1)
for table in sys.argv[1:]:
    client.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    client.update_time_to_live(
        TableName=table,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )
    print(f"dynamodb-local: table {table} on {client.meta.endpoint_url}")
PY
cat <<ENV
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=$SESSION_TOKEN
export AWS_REGION=eu-west-2
export AWS_DEFAULT_REGION=eu-west-2 AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$PORT
export MGRAPH_DYNAMODB_TABLE=${TABLES[0]}
export MOTO_PID=$PID
ENV
