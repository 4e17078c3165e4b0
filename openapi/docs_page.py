"""Opens /docs in headless Chromium, network limited to loopback, and checks that the page shows
every operation of /openapi.json (from the rendered DOM).

Usage: docs_page.py BASE_URL
"""

import json
import re
import subprocess
import sys
import urllib.request

base = sys.argv[1].rstrip("/")
with urllib.request.urlopen(base + "/openapi.json", timeout=10) as answer:
    documented = set(json.load(answer)["paths"])

dom = subprocess.run(
    [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        # Nothing but loopback: every other host fails to resolve, and any proxied request too.
        "--proxy-server=http://127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--virtual-time-budget=20000",
        "--dump-dom",
        base + "/docs/",
    ],
    capture_output=True,
    text=True,
    timeout=120,
    check=True,
).stdout

shown = set(re.findall(r'data-path="([^"]*)"', dom))
title = re.search(r'<h2 class="title">([^<]*)', dom)
missing = documented - shown
print(
    f"docs page: {len(shown)} of {len(documented)} documented paths rendered"
    + (f", title {title.group(1).strip()!r}" if title else "")
)
if missing or not title:
    print(f"docs page: missing {sorted(missing)}; title found: {bool(title)}", file=sys.stderr)
    sys.exit(1)
