#!/usr/bin/env python3
"""Local cold start of the Lambda binary: from process start to the first response it posts.

Usage: deploy/cold_start.py BOOTSTRAP [RUNS] [--store STORE]   (default 15 runs)

Each run starts BOOTSTRAP in Lambda mode against a minimal Lambda Runtime API on loopback that
hands it one API Gateway HTTP API event for GET /info/health, and times the span from spawning
the process to receiving its response (the binary's own start-up, the runtime's first poll and
the request). Prints every run and the median. It measures this machine, not Lambda: Lambda adds
fetching the zip and starting the micro-VM, which no local run can see.

With --store (a DEPLOY__STORE, e.g. dynamodb:TABLE with this process's AWS_* variables pointing
at deploy/dynamodb-local.sh's stand-in), runs alternate between no history and that store, and
both medians are printed with their difference: what opening the history adds to a cold start.
"""

import http.server
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

def http_api_event(path, headers=None):
    """An API Gateway HTTP API (payload 2.0) event for GET `path`."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "deploy.dev.mgraph.ai", "accept": "*/*", **(headers or {})},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "domainName": "deploy.dev.mgraph.ai",
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "cold-start"},
            "requestId": "cold-start",
            "routeKey": "$default",
            "stage": "$default",
            "time": "22/Nov/2026:10:00:00 +0000",
            "timeEpoch": 0,
        },
        "isBase64Encoded": False,
    }


def invoke_fresh(bootstrap, env, events):
    """Starts `bootstrap` in Lambda mode with `env` (plus the variables Lambda sets), hands it
    `events` one by one, and returns the milliseconds from spawning it to its first response,
    and the responses it posted."""
    pending = list(events)
    responses = []
    done = threading.Event()
    first = {}

    class RuntimeApi(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if not pending:  # the binary polls again after the last answer; keep it waiting
                done.wait(10)
                self.send_response(410)
                self.end_headers()
                return
            body = json.dumps(pending.pop(0)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Lambda-Runtime-Aws-Request-Id", f"invocation-{len(responses) + 1}")
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                             "arn:aws:lambda:eu-west-1:123456789012:function:cold-start")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            first.setdefault("at", time.perf_counter())
            responses.append(json.loads(self.rfile.read(length)))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            if len(responses) == len(events):
                done.set()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": "cold-start",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        **env,
    }
    output = tempfile.TemporaryFile()
    started = time.perf_counter()
    process = subprocess.Popen([bootstrap], env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = started + 30
        while not done.wait(0.02):
            if process.poll() is not None or time.perf_counter() > deadline:
                process.kill()
                process.wait()
                output.seek(0)
                sys.exit(f"{bootstrap}: answered {len(responses)} of {len(events)} events "
                         f"(exit status {process.returncode}); output: "
                         f"{output.read().decode(errors='replace')[-2000:]}")
    finally:
        process.kill()
        process.wait()
        server.shutdown()
        server.server_close()
    return (first["at"] - started) * 1000, responses


def one_run(bootstrap, store="none"):
    env = {
        "FAST_API__AUTH__API_KEY__NAME": "x-api-key",
        "FAST_API__AUTH__API_KEY__VALUE": "cold-start-key",
        "RUST_LOG": "info",
        "DEPLOY__STORE": store,
        # Lambda sets the region and credentials; here they are this process's.
        **{k: v for k, v in os.environ.items() if k.startswith("AWS_") and store != "none"},
    }
    ms, responses = invoke_fresh(bootstrap, env, [http_api_event("/info/health")])
    if responses[0].get("statusCode") != 200:
        sys.exit(f"cold_start.py: unexpected response {responses[0]}")
    return ms


def report(label, times):
    print(f"cold start runs{label} (ms):", " ".join(f"{t:.1f}" for t in times))
    print(f"cold start median{label}: {statistics.median(times):.1f} ms over {len(times)} runs "
          f"(min {min(times):.1f}, max {max(times):.1f})")


def main():
    args = sys.argv[1:]
    store = None
    if "--store" in args:
        at = args.index("--store")
        store = args[at + 1] if at + 1 < len(args) else sys.exit(__doc__)
        del args[at:at + 2]
    if len(args) not in (1, 2):
        sys.exit(__doc__)
    bootstrap = os.path.abspath(args[0])
    runs = int(args[1]) if len(args) == 2 else 15
    if store is None:
        report("", [one_run(bootstrap) for _ in range(runs)])
        return
    without, with_store = [], []
    for _ in range(runs):
        without.append(one_run(bootstrap))
        with_store.append(one_run(bootstrap, store))
    report(" without a history", without)
    report(f" with {store}", with_store)
    added = statistics.median(with_store) - statistics.median(without)
    print(f"cold start: the history ({store}) adds {added:.1f} ms to the median "
          f"(interleaved runs)")


if __name__ == "__main__":
    main()
