#!/usr/bin/env python3
"""Local cold start of the Lambda binary: from process start to the first response it posts.

Usage: deploy/cold-start.py BOOTSTRAP [RUNS]   (default 15 runs)

Each run starts BOOTSTRAP in Lambda mode against a minimal Lambda Runtime API on loopback that
hands it one API Gateway HTTP API event for GET /info/health, and times the span from spawning
the process to receiving its response (the binary's own start-up, the runtime's first poll and
the request). Prints every run and the median. It measures this machine, not Lambda: Lambda adds
fetching the zip and starting the micro-VM, which no local run can see.
"""

import http.server
import json
import os
import statistics
import subprocess
import sys
import threading
import time

EVENT = {
    "version": "2.0",
    "routeKey": "$default",
    "rawPath": "/info/health",
    "rawQueryString": "",
    "headers": {"host": "deploy.dev.mgraph.ai", "accept": "*/*"},
    "requestContext": {
        "accountId": "123456789012",
        "apiId": "a1b2c3d4e5",
        "domainName": "deploy.dev.mgraph.ai",
        "http": {"method": "GET", "path": "/info/health", "protocol": "HTTP/1.1",
                 "sourceIp": "203.0.113.7", "userAgent": "cold-start"},
        "requestId": "cold-start",
        "routeKey": "$default",
        "stage": "$default",
        "time": "22/Nov/2026:10:00:00 +0000",
        "timeEpoch": 0,
    },
    "isBase64Encoded": False,
}


def one_run(bootstrap):
    answered = threading.Event()
    answer = {}

    class RuntimeApi(http.server.BaseHTTPRequestHandler):
        served = False

        def log_message(self, *args):
            pass

        def do_GET(self):
            if RuntimeApi.served:  # the binary polls again after answering; keep it waiting
                answered.wait(10)
                self.send_response(410)
                self.end_headers()
                return
            RuntimeApi.served = True
            body = json.dumps(EVENT).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Lambda-Runtime-Aws-Request-Id", "cold-start-1")
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                             "arn:aws:lambda:eu-west-1:123456789012:function:cold-start")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            answer["at"] = time.perf_counter()
            answer["body"] = json.loads(self.rfile.read(length))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            answered.set()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": "cold-start",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "FAST_API__AUTH__API_KEY__NAME": "x-api-key",
        "FAST_API__AUTH__API_KEY__VALUE": "cold-start-key",
        "RUST_LOG": "info",
    }
    started = time.perf_counter()
    process = subprocess.Popen([bootstrap], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        if not answered.wait(30):
            sys.exit("cold-start.py: no response within 30 s")
    finally:
        process.kill()
        process.wait()
        server.shutdown()
        server.server_close()
    if answer["body"].get("statusCode") != 200:
        sys.exit(f"cold-start.py: unexpected response {answer['body']}")
    return (answer["at"] - started) * 1000


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    bootstrap = os.path.abspath(sys.argv[1])
    runs = int(sys.argv[2]) if len(sys.argv) == 3 else 15
    times = [one_run(bootstrap) for _ in range(runs)]
    print("cold start runs (ms):", " ".join(f"{t:.1f}" for t in times))
    print(f"cold start median: {statistics.median(times):.1f} ms over {runs} runs "
          f"(min {min(times):.1f}, max {max(times):.1f})")


if __name__ == "__main__":
    main()
