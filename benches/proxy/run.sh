#!/usr/bin/env bash
# The proxy path's speed against one nginx hop, on loopback, in one interleaved run.
#
#   bash benches/proxy/run.sh            # ROUNDS=3 SECONDS_PER_RUN=5 by default
#   BASELINE_BIN=/path/to/an/older/mgraph-deploy bash benches/proxy/run.sh
#                                        # the same, with another build of the service as a fourth
#                                        # target, interleaved with the others ("baseline")
#
# Starts (Debian's nginx and wrk, installed when missing):
#   - an nginx stub of the GitHub Service answering every create with canned JSON ("direct"),
#   - one nginx proxy_pass hop to that stub (keepalive upstream, 1 worker) ("nginx hop"),
#   - the release mgraph-deploy pointed at the stub ("this service"),
# then runs wrk against each target at c=1 and c=64, ROUNDS times, targets interleaved, and
# prints the medians, the ratios to the nginx hop, the p50 each adds at c=1, the CPU time each
# serving process spends per request, and the service's peak RSS (VmHWM). For information: it never fails on a number.
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS="${ROUNDS:-3}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-5}"

# shellcheck source=benches/proxy/common.sh
source benches/proxy/common.sh
need nginx nginx
need wrk wrk

cargo build --release --locked --quiet --bin mgraph-deploy
SERVICE_BIN="target/release/mgraph-deploy"

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    stop_nginx stub
    stop_nginx hop
    rm -rf "$WORK"
}
trap cleanup EXIT

start_stub
HOP_PORT="$(free_port)"
SERVICE_PORT="$(free_port)"

nginx_conf hop "
    upstream stub { server 127.0.0.1:$STUB_PORT; keepalive 64; }
    server {
        listen 127.0.0.1:$HOP_PORT;
        location / {
            proxy_pass http://stub;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
    }"

start_service() { # binary, port, log name: starts it against the stub, pid in STARTED_PID
    URL__TARGET_SERVER__GITHUB_SERVICE="http://127.0.0.1:$STUB_PORT" DEPLOY__LISTEN="127.0.0.1:$2" \
        DEPLOY__MAX_CONNECTIONS=4096 "$1" >"$WORK/$3.log" 2>&1 &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
    for _ in $(seq 1 100); do
        curl -s "http://127.0.0.1:$2/info/health" >/dev/null && break
        sleep 0.05
    done
}
start_service "$SERVICE_BIN" "$SERVICE_PORT" service
SERVICE_PID="$STARTED_PID"
SERVICES=(service)
if [[ -n "${BASELINE_BIN:-}" ]]; then
    BASELINE_PORT="$(free_port)"
    start_service "$BASELINE_BIN" "$BASELINE_PORT" baseline
    BASELINE_PID="$STARTED_PID"
    SERVICES+=(baseline)
fi

write_bodies

check() { # url, body name: the HTTP status of one request
    curl -s -o "$WORK/check.out" -w '%{http_code}' -X POST -H 'content-type: application/json' \
        --data-binary "@$WORK/$2.json" "$1" || true
}
TARGETS=("stub:$STUB_PORT:/github-secrets-repo/create:upstream" "hop:$HOP_PORT:/github-secrets-repo/create:upstream"
    "service:$SERVICE_PORT:/operations/github/secrets/create:service")
[[ -n "${BASELINE_BIN:-}" ]] && TARGETS+=("baseline:$BASELINE_PORT:/operations/github/secrets/create:service")
for target in "${TARGETS[@]}"; do
    IFS=: read -r name port path lua <<<"$target"
    status="$(check "http://127.0.0.1:$port$path" "$lua")"
    [[ "$status" == 201 || "$status" == 200 ]] || { echo "bench: $name answered $status: $(head -c 300 "$WORK/check.out")" >&2; exit 1; }
done

# The process serving each target, whose CPU time per request is measured: nginx's worker, or the
# service. (CPU per request does not depend on what else the machine is doing the way rps does.)
STUB_WORKER="$(pgrep -P "$(cat "$WORK/stub.pid")" | head -1)"
HOP_WORKER="$(pgrep -P "$(cat "$WORK/hop.pid")" | head -1)"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
run_wrk() { # name, port, path, lua, connections, pid serving it
    local threads=1 before after
    [[ "$5" -gt 1 ]] && threads=2
    before="$(cpu_ticks "$6")"
    wrk -t"$threads" -c"$5" -d"${SECONDS_PER_RUN}s" --latency -s "$WORK/$4.lua" "http://127.0.0.1:$2$3" >"$WORK/wrk.out" 2>&1
    after="$(cpu_ticks "$6")"
    python3 - "$1" "$5" "$WORK/wrk.out" "$((after - before))" "$(getconf CLK_TCK)" >>"$RESULTS" <<'PY'
import re, sys
name, conns, path = sys.argv[1], sys.argv[2], sys.argv[3]
ticks, per_second = int(sys.argv[4]), int(sys.argv[5])
text = open(path).read()
def ms(v):
    n, unit = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
requests = int(re.search(r"(\d+) requests in", text).group(1))
cpu_us = ticks / per_second / max(requests, 1) * 1e6
print(f"{name}\t{conns}\t{rps}\t{p50}\t{p99}\t{errors.group(1) if errors else 0}\t{cpu_us}")
PY
}

echo "bench: $ROUNDS rounds x ${#TARGETS[@]} targets x c=1,64, ${SECONDS_PER_RUN}s each (about $((ROUNDS * 2 * ${#TARGETS[@]} * SECONDS_PER_RUN)) s)" >&2
for round in $(seq 1 "$ROUNDS"); do
    for c in 1 64; do
        run_wrk direct "$STUB_PORT" /github-secrets-repo/create upstream "$c" "$STUB_WORKER"
        run_wrk hop "$HOP_PORT" /github-secrets-repo/create upstream "$c" "$HOP_WORKER"
        run_wrk service "$SERVICE_PORT" /operations/github/secrets/create service "$c" "$SERVICE_PID"
        if [[ -n "${BASELINE_BIN:-}" ]]; then
            run_wrk baseline "$BASELINE_PORT" /operations/github/secrets/create service "$c" "$BASELINE_PID"
        fi
    done
    echo "bench: round $round done" >&2
done
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
HWM_KB="$(hwm_kb "$SERVICE_PID")"
BASELINE_HWM_KB="$([[ -n "${BASELINE_BIN:-}" ]] && hwm_kb "$BASELINE_PID" || echo 0)"

python3 - "$RESULTS" "$HWM_KB" "$ROUNDS" "$BASELINE_HWM_KB" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
hwm_kb, rounds, baseline_hwm_kb = int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
def med(name, conns, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == name and r[1] == conns)
errors = sum(int(r[5]) for r in rows)
names = {"direct": "direct to the upstream stub", "hop": "one nginx proxy_pass hop (keepalive, 1 worker)",
         "service": "this service", "baseline": "the baseline build (BASELINE_BIN)"}
targets = [n for n in ("direct", "hop", "service", "baseline") if any(r[0] == n for r in rows)]
print(f"create (POST …/secrets/create), medians of {rounds} interleaved rounds\n")
print("| target | c=1 rps | c=1 p50 | c=64 rps | c=64 p99 | CPU per request, c=1 / c=64 |")
print("|---|---|---|---|---|---|")
for n in targets:
    print(f"| {names[n]} | {med(n,'1',2):,.0f} | {med(n,'1',3):.3f} ms | {med(n,'64',2):,.0f} | {med(n,'64',4):.1f} ms"
          f" | {med(n,'1',6):.0f} / {med(n,'64',6):.0f} µs |")
hop64, svc64 = med("hop", "64", 2), med("service", "64", 2)
d50, h50, s50 = med("direct", "1", 3), med("hop", "1", 3), med("service", "1", 3)
print()
print(f"service / nginx hop throughput: c=1 {med('service','1',2)/med('hop','1',2):.2f}x, c=64 {svc64/hop64:.2f}x")
print(f"p50 added to direct at c=1: nginx hop {h50-d50:.3f} ms, this service {s50-d50:.3f} ms")
print(f"CPU per request at c=64 (the serving process only; the hop's excludes the stub's): "
      f"nginx hop {med('hop','64',6):.0f} µs, this service {med('service','64',6):.0f} µs")
print(f"service peak RSS (VmHWM): {hwm_kb/1024:.1f} MB")
if "baseline" in targets:
    print(f"baseline / nginx hop throughput: c=1 {med('baseline','1',2)/med('hop','1',2):.2f}x, "
          f"c=64 {med('baseline','64',2)/hop64:.2f}x")
    print(f"p50 added to direct at c=1 by the baseline: {med('baseline','1',3)-d50:.3f} ms")
    print(f"CPU per request at c=64, baseline: {med('baseline','64',6):.0f} µs")
    print(f"baseline peak RSS (VmHWM): {baseline_hwm_kb/1024:.1f} MB")
print(f"non-2xx answers: {errors}")
PY
