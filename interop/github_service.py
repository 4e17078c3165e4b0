"""Runs the real MGraph-AI GitHub Service (from PyPI) on loopback, wired to its own GitHub API
surrogate, for the interop tier. Never used in production.

It prints one JSON line on stdout once both servers accept connections:
  {"github_service_url", "control_url", "api_key_name", "api_key_value", "public_key", "pats": {...}}
then serves until it receives SIGTERM.

- The GitHub Service runs under uvicorn on a loopback port chosen by the OS, with an API key and a
  fresh X25519 key pair (so sealing really happens with its public key).
- Its GitHub client (the real `requests` session) talks over HTTP to the GitHub API surrogate,
  served on a third loopback port: only the `https://api.github.com` prefix is rewritten.
- A second tiny server (the control URL) lets the checks read back what GitHub "stored":
  GET /plaintext?scope=repo|environment|org&owner=&repo=&environment=&org=&name=  ->  {"plaintext": ...}
  (404 when the secret is absent). Only for tests: it is the surrogate's own decrypt helper.

Start it from a scratch directory with AWS_REGION unset (the package reads .env files upward and
tries to download Lambda dependencies when AWS_REGION is set).
"""

import json
import os
import secrets
import socket
import sys
import threading

import uvicorn
from nacl.public import PrivateKey

OWNER, REPO, ENVIRONMENT, ORG = "interop-owner", "interop-repo", "production", "interop-org"
API_KEY_NAME = "x-interop-gs-key"


def loopback_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


# The GitHub Service classifies GitHub's errors by looking for these anywhere in the exception
# text, which here reads "403 Client Error: Forbidden for url: http://127.0.0.1:<port>/repos/...".
# (docs/github-service-contract.md, known bug 6).
STATUS_SUBSTRINGS = ("401", "403", "404")


def surrogate_socket() -> socket.socket:
    """A loopback socket for the GitHub API surrogate whose port does not contain 401, 403 or 404.

    On port 37401 every GitHub error the GitHub Service relays becomes 401 invalid_pat, on 40403 a
    429 becomes 403 forbidden: the interop checks would then fail for a reason that is neither
    ours nor the one under test, about once in twenty runs. Sockets with such a port stay bound
    until one without is found, so the OS never hands the same port back.
    """
    refused = []
    try:
        while True:
            sock = loopback_socket()
            port = str(sock.getsockname()[1])
            if not any(status in port for status in STATUS_SUBSTRINGS):
                return sock
            refused.append(sock)
    finally:
        for sock in refused:
            sock.close()


class EmptyNoContent:
    """The surrogate answers 204 with a JSON `null` body, which uvicorn refuses to send."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        state = {"no_content": False}

        async def wrapped(message):
            if message["type"] == "http.response.start" and message["status"] == 204:
                state["no_content"] = True
                message = dict(message)
                message["headers"] = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"content-length"
                ]
            elif message["type"] == "http.response.body" and state["no_content"]:
                message = dict(message, body=b"")
            await send(message)

        return await self.app(scope, receive, wrapped)


def control_app(surrogate):
    """A minimal ASGI app: read back the plaintext of a stored secret."""
    from urllib.parse import parse_qs

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        status, body = 404, {"error": "not found"}
        if scope["path"] == "/plaintext":
            scope_kind, name = query.get("scope"), query.get("name", "")
            keys, state = surrogate.keys, surrogate.state
            secret, scope_id = None, None
            if scope_kind == "repo":
                secret = state.get_repo_secret(query["owner"], query["repo"], name)
                scope_id = keys.scope_id_for_repo(query["owner"], query["repo"])
            elif scope_kind == "environment":
                secret = state.get_env_secret(query["owner"], query["repo"], query["environment"], name)
                scope_id = keys.scope_id_for_env(query["owner"], query["repo"], query["environment"])
            elif scope_kind == "org":
                secret = state.get_org_secret(query["org"], name)
                scope_id = keys.scope_id_for_org(query["org"])
            if secret is not None:
                status = 200
                body = {"plaintext": keys.decrypt_secret(scope_id, secret.encrypted_value)}
                if hasattr(secret, "visibility"):
                    body["visibility"] = secret.visibility
        payload = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})

    return app


def serve_in_thread(app, sock):
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    return server, thread


def main():
    private_key = PrivateKey.generate()
    api_key_value = secrets.token_hex(16)
    os.environ.pop("AWS_REGION", None)
    os.environ["FAST_API__AUTH__API_KEY__NAME"] = API_KEY_NAME
    os.environ["FAST_API__AUTH__API_KEY__VALUE"] = api_key_value
    os.environ["SERVICE__AUTH__PRIVATE_KEY"] = bytes(private_key).hex()
    os.environ["SERVICE__AUTH__PUBLIC_KEY"] = bytes(private_key.public_key).hex()

    from mgraph_ai_service_github.fast_api.GitHub__Service__Fast_API import GitHub__Service__Fast_API
    from mgraph_ai_service_github.surrogates.github.GitHub__API__Surrogate__PATs import (
        GitHub__API__Surrogate__PATs,
    )
    from mgraph_ai_service_github.service.github.GitHub__API import set_session_factory
    from mgraph_ai_service_github.service.github.session.Requests__Session__Github import (
        Requests__Session__Github,
    )
    from mgraph_ai_service_github.surrogates.github.GitHub__API__Surrogate import GitHub__API__Surrogate

    surrogate = GitHub__API__Surrogate().setup()
    surrogate.add_repo(OWNER, REPO).add_environment(OWNER, REPO, ENVIRONMENT).add_org(ORG)
    surrogate.add_repo(OWNER, "second-repo")

    with GitHub__Service__Fast_API() as service:
        service.setup()
        gs_app = EmptyNoContent(service.app())

    gs_sock, control_sock, surrogate_sock = loopback_socket(), loopback_socket(), surrogate_socket()
    surrogate_base = f"http://127.0.0.1:{surrogate_sock.getsockname()[1]}"

    class SurrogateSession(Requests__Session__Github):
        """The GitHub Service's real `requests` session, with api.github.com swapped for the surrogate."""

        def _local(self, url):
            return url.replace("https://api.github.com", surrogate_base, 1)

        def get(self, url, **kwargs):
            return super().get(self._local(url), **kwargs)

        def put(self, url, **kwargs):
            return super().put(self._local(url), **kwargs)

        def delete(self, url, **kwargs):
            return super().delete(self._local(url), **kwargs)

        def post(self, url, **kwargs):
            return super().post(self._local(url), **kwargs)

    set_session_factory(lambda api_token: SurrogateSession(api_token=api_token))

    servers = [serve_in_thread(app, sock) for app, sock in [
        (gs_app, gs_sock),
        (control_app(surrogate), control_sock),
        (EmptyNoContent(surrogate.app()), surrogate_sock),
    ]]
    while not all(server.started for server, _ in servers):
        if not all(thread.is_alive() for _, thread in servers):
            sys.exit("a server failed to start")
        threading.Event().wait(0.02)

    pats = {
        kind.lower(): getattr(GitHub__API__Surrogate__PATs, f"PAT__{kind}")
        for kind in ["ADMIN", "REPO_WRITE", "REPO_READ", "ORG_ADMIN", "ENV_ONLY", "EXPIRED",
                     "RATE_LIMITED", "NO_SCOPES", "INVALID"]
    }
    print(json.dumps({
        "github_service_url": f"http://127.0.0.1:{gs_sock.getsockname()[1]}",
        "control_url": f"http://127.0.0.1:{control_sock.getsockname()[1]}",
        "api_key_name": API_KEY_NAME,
        "api_key_value": api_key_value,
        "public_key": bytes(private_key.public_key).hex(),
        "owner": OWNER, "repo": REPO, "environment": ENVIRONMENT, "org": ORG,
        "pats": pats,
    }), flush=True)

    stop = threading.Event()
    import signal
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    for server, _ in servers:
        server.should_exit = True


if __name__ == "__main__":
    main()
