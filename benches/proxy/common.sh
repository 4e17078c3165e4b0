# shellcheck shell=bash
# Sourced by run.sh and instructions.sh (issue 14): Debian's tools installed when missing, free
# loopback ports, an nginx stub of the GitHub Service answering every create with canned JSON,
# and the create bodies. The caller sets WORK (a scratch directory) and removes it.

need() { # command, Debian package
    command -v "$1" >/dev/null && return
    echo "bench: installing $2 (Debian)" >&2
    if [[ $(id -u) == 0 ]]; then apt-get install -y -q "$2" >/dev/null; else sudo apt-get install -y -q "$2" >/dev/null; fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# What the GitHub Service answers to a repository create (docs/github-service-contract.md).
ANSWER='{"response_context":{"success":true,"status_code":201,"duration":0.0,"timestamp":1795356724737,"messages":["Secret created"],"errors":[],"error_type":"none","rate_limit":{"limit":5000,"remaining":4990,"reset":1795356724,"used":10}},"response_data":{"created":true}}'

nginx_conf() { # name, server block: starts an nginx (1 worker) with that server, pid in $WORK/name.pid
    cat >"$WORK/$1.conf" <<CONF
worker_processes 1;
pid $WORK/$1.pid;
error_log $WORK/$1.error.log warn;
daemon on;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/$1.body;
    proxy_temp_path $WORK/$1.proxy;
    fastcgi_temp_path $WORK/$1.fastcgi;
    uwsgi_temp_path $WORK/$1.uwsgi;
    scgi_temp_path $WORK/$1.scgi;
    keepalive_requests 1000000;
    $2
}
CONF
    "$(command -v nginx || echo /usr/sbin/nginx)" -c "$WORK/$1.conf" -e "$WORK/$1.error.log"
}

start_stub() { # sets STUB_PORT
    STUB_PORT="$(free_port)"
    nginx_conf stub "
    server {
        listen 127.0.0.1:$STUB_PORT;
        location / {
            client_body_buffer_size 64k;
            default_type application/json;
            return 201 '$ANSWER';
        }
    }"
}

stop_nginx() { # name
    [[ -f "$WORK/$1.pid" ]] && kill "$(cat "$WORK/$1.pid")" 2>/dev/null || true
}

# A create as a client sends it: schema-valid sealed blobs (the service never opens them); and the
# create the service sends upstream, for the direct and hop targets. Each as JSON and as a wrk script.
write_bodies() {
    python3 - "$WORK" <<'PY'
import base64, json, os, sys
work = sys.argv[1]
blob = lambda n: base64.b64encode(os.urandom(n)).decode()
pat, value = blob(88), blob(80)
bodies = {
    "service": {"encrypted_pat": pat, "target": {"owner": "octo-org", "repo": "my-service"},
                "secret_name": "BENCH_SECRET", "encrypted_value": value},
    "upstream": {"encrypted_pat": pat, "owner": "octo-org", "repo": "my-service",
                 "secret_name": "BENCH_SECRET", "encrypted_value": value},
}
for name, payload in bodies.items():
    text = json.dumps(payload)
    open(f"{work}/{name}.json", "w").write(text)
    open(f"{work}/{name}.lua", "w").write(
        'wrk.method = "POST"\nwrk.headers["content-type"] = "application/json"\n'
        f"wrk.body = {json.dumps(text)}\n")
PY
}
