#!/usr/bin/env bash
# The instructions the service executes per create: a count that does not move with the machine's
# other load, unlike requests per second, so that a change to the request path can be measured
# alone, to the instruction.
#
#   bash benches/proxy/instructions.sh       # REQUESTS=2000 by default
#   SERVICE_BIN=/path/to/another/build bash benches/proxy/instructions.sh
#
# Runs the profiling build (the release build with symbols; or SERVICE_BIN) under valgrind's
# callgrind, against the nginx stub of run.sh; sends REQUESTS creates one after another on one
# kept-alive connection (after 200 not counted), and prints the user-space instructions per
# request (every thread's) and the functions that cost the most, inclusive. Kernel time (the
# socket calls) is not in the count. For information: it never fails on a number.
set -euo pipefail
cd "$(dirname "$0")/../.."

REQUESTS="${REQUESTS:-2000}"

# shellcheck source=benches/proxy/common.sh
source benches/proxy/common.sh
need nginx nginx
need valgrind valgrind

if [[ -z "${SERVICE_BIN:-}" ]]; then
    cargo build --profile profiling --locked --quiet --bin mgraph-deploy
    SERVICE_BIN=target/profiling/mgraph-deploy
fi

WORK="$(mktemp -d)"
SERVICE_PID=
cleanup() {
    [[ -n "$SERVICE_PID" ]] && kill "$SERVICE_PID" 2>/dev/null || true
    stop_nginx stub
    rm -rf "$WORK"
}
trap cleanup EXIT

start_stub
write_bodies
SERVICE_PORT="$(free_port)"
URL__TARGET_SERVER__GITHUB_SERVICE="http://127.0.0.1:$STUB_PORT" DEPLOY__LISTEN="127.0.0.1:$SERVICE_PORT" \
    valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$WORK/callgrind.out" "$SERVICE_BIN" >"$WORK/service.log" 2>&1 &
SERVICE_PID=$!
for _ in $(seq 1 300); do
    curl -s "http://127.0.0.1:$SERVICE_PORT/info/health" >/dev/null && break
    sleep 0.1
done

creates() { # count: sends them on one connection, each answered 200 before the next
    python3 - "$SERVICE_PORT" "$1" "$WORK/service.json" <<'PY'
import socket, sys
port, count, body = int(sys.argv[1]), int(sys.argv[2]), open(sys.argv[3], "rb").read()
request = (b"POST /operations/github/secrets/create HTTP/1.1\r\nhost: bench\r\n"
           b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)) + body
with socket.create_connection(("127.0.0.1", port)) as connection:
    for _ in range(count):
        connection.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += connection.recv(65536)
        head, rest = answer.split(b"\r\n\r\n", 1)
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        while len(rest) < length:
            rest += connection.recv(65536)
        if not head.startswith(b"HTTP/1.1 200"):
            sys.exit(f"bench: the service answered {head.splitlines()[0]!r}: {rest[:300]!r}")
PY
}

creates 200
callgrind_control --instr=on "$SERVICE_PID" >/dev/null 2>&1
creates "$REQUESTS"
callgrind_control --instr=off "$SERVICE_PID" >/dev/null 2>&1
callgrind_control --dump "$SERVICE_PID" >/dev/null 2>&1
kill "$SERVICE_PID"
wait "$SERVICE_PID" 2>/dev/null || true
SERVICE_PID=

# The dump asked for above (callgrind numbers dumps after the file name); the file written at
# exit holds only what ran after it.
callgrind_annotate --auto=no --inclusive=yes "$WORK/callgrind.out.1" >"$WORK/inclusive.txt" 2>/dev/null
python3 - "$WORK/inclusive.txt" "$REQUESTS" <<'PY'
import re, sys
requests = int(sys.argv[2])

def rows(path):
    for line in open(path).read().splitlines():
        match = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)", line)
        if match:
            yield int(match.group(1).replace(",", "")), re.sub(r"\s*\[[^\]]*\]$", "", match.group(2))

inclusive = list(rows(sys.argv[1]))
total = next(ir for ir, name in inclusive if "PROGRAM TOTALS" in name)
print(f"create (POST …/secrets/create), {requests} requests on one connection\n")
print(f"user-space instructions per request: {total / requests:,.0f}\n")
print("the service's own functions that cost the most, inclusive, per request:")
shown = set()
for ir, name in inclusive:
    function = name.split(":", 1)[-1]
    if not function.startswith(("mgraph_deploy", "<mgraph_deploy")) or function in shown:
        continue
    shown.add(function)
    print(f"{ir / requests:9,.0f}  {function[:110]}")
    if len(shown) == 20:
        break
PY
