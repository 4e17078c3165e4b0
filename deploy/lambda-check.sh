#!/usr/bin/env bash
# Checks the bootstrap inside a Lambda zip (deploy/package.sh) in Lambda mode, against local
# stand-ins of the Lambda Runtime API:
#   1. the Lambda-mode end-to-end tests, tests/api/lambda.rs, run against this bootstrap;
#   2. deploy/check_template_env.py: the template's function environment is accepted;
#   3. deploy/cold_start.py: process start to first response, median of 15 runs, without a
#      history and with the DynamoDB one, interleaved;
#   4. the bootstrap behind `cargo lambda watch --only-lambda-apis` (the pinned cargo-lambda),
#      driven by plain HTTP and the CLI through its function URL: crates/client/tests/lambda_watch.rs.
#
# Usage: deploy/lambda-check.sh ZIP
# The history is on DynamoDB throughout: moto's server (deploy/dynamodb-local.sh) with a test
# table and the template's dev table, started here and stopped at the end.
# A bootstrap for another machine (arm64 on an x86_64 host) runs under qemu-user, which must be
# installed: qemu-aarch64 and an aarch64 glibc in /usr/aarch64-linux-gnu (Debian and Ubuntu
# packages qemu-user, libc6-arm64-cross, libgcc-s1-arm64-cross). Its cold start is then the
# emulator's, and is reported as such.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ZIP="$(realpath "${1:?usage: deploy/lambda-check.sh ZIP}")"
cd "$ROOT"
TOOLS="$(bash deploy/tools.sh)"

RUN_DIR="$ROOT/target/lambda/check-$(basename "$ZIP" .zip)"
rm -rf "$RUN_DIR"
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$ZIP" "$RUN_DIR"
chmod +x "$RUN_DIR/bootstrap"

BOOTSTRAP="$RUN_DIR/bootstrap"
NOTE=""
MACHINE="$(readelf -h "$BOOTSTRAP" | sed -n 's/^ *Machine: *//p')"
case "$MACHINE:$(uname -m)" in
    *X86-64*:x86_64|*AArch64*:aarch64) ;;
    *AArch64*:x86_64)
        if [[ ! -x /usr/bin/qemu-aarch64 || ! -d /usr/aarch64-linux-gnu ]]; then
            echo "lambda-check.sh: an arm64 bootstrap needs qemu-user and libc6-arm64-cross here" >&2
            exit 2
        fi
        BOOTSTRAP="$RUN_DIR/bootstrap-under-qemu"
        printf '#!/bin/sh\nexec /usr/bin/qemu-aarch64 -L /usr/aarch64-linux-gnu %s "$@"\n' \
            "$RUN_DIR/bootstrap" >"$BOOTSTRAP"
        chmod +x "$BOOTSTRAP"
        NOTE=" (under qemu-user: the emulator's speed, not Lambda's)"
        ;;
    *) echo "lambda-check.sh: cannot run a $MACHINE bootstrap on $(uname -m)" >&2; exit 2 ;;
esac

echo "lambda-check: moto's DynamoDB for the history"
eval "$(bash deploy/dynamodb-local.sh mgraph-deploy-history-test mgraph-deploy-history-dev)"
trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT
export MGRAPH_REQUIRE_DYNAMODB=1

echo "lambda-check: $(basename "$ZIP"): $MACHINE bootstrap"
MGRAPH_DEPLOY_LAMBDA_BINARY="$BOOTSTRAP" cargo test --locked --test api lambda::
"$TOOLS/python" deploy/check_template_env.py deploy/template.yaml "$BOOTSTRAP"
echo "lambda-check: cold start$NOTE"
python3 deploy/cold_start.py "$BOOTSTRAP" 15 --store "dynamodb:$MGRAPH_DYNAMODB_TABLE"
echo "lambda-check: behind cargo lambda watch --only-lambda-apis"
MGRAPH_DEPLOY_CARGO_LAMBDA="$TOOLS/cargo-lambda" MGRAPH_DEPLOY_LAMBDA_BINARY="$BOOTSTRAP" \
    cargo test --locked -p mgraph-deploy-client --test lambda_watch -- --ignored
