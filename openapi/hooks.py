"""Schemathesis hooks of the OpenAPI tier (openapi/run.sh).

- Every schema-valid sealed blob a case carries is replaced by a real sealed box to the GitHub
  Service emulator's key (the PAT is the emulator's admin PAT), so valid requests reach real
  outcomes (a write, a 404 for a target the emulator does not hold) instead of all failing to
  decrypt. Blobs that are not schema-valid are left as generated: negative cases stay negative.
- Two bodies in three have their schema-valid targets pointed at what the emulator holds
  (local-owner/local-repo, its environment `production`, the organisation local-org), so writes,
  reads and deletes succeed too, not only 404s.
- A check of our own: no sealed blob of the request comes back in the answer.

Needs DEPLOY_URL, DEPLOY_API_KEY_NAME, DEPLOY_API_KEY_VALUE and DEPLOY_PAT in the environment.
"""

import base64
import json
import os
import re
import urllib.request
import zlib

import schemathesis
from nacl.public import PublicKey, SealedBox

BLOB_KEYS = {"encrypted_pat", "encrypted_value", "github_pat"}
PAT_KEYS = {"encrypted_pat", "github_pat"}
# The schemas' patterns (crates/api/src/sealed.rs): standard base64, at least 48 bytes.
QUADS = r"(?:[A-Za-z0-9+/]{4}){16}(?:[A-Za-z0-9+/]{4})*"
TAILS = r"(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)"
VALUE = re.compile(rf"^{QUADS}{TAILS}?$")
PAT = re.compile(rf"^{QUADS}(?:[A-Za-z0-9+/]{{4}}|{TAILS})$")


def _public_key() -> SealedBox:
    request = urllib.request.Request(
        os.environ["DEPLOY_URL"] + "/public-keys/github",
        headers={os.environ["DEPLOY_API_KEY_NAME"]: os.environ["DEPLOY_API_KEY_VALUE"]},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        key = json.load(answer)["public_key"]
    return SealedBox(PublicKey(bytes.fromhex(key)))


BOX = _public_key()
PAT_PLAINTEXT = os.environ["DEPLOY_PAT"].encode()


def _seal(plaintext: bytes) -> str:
    return base64.b64encode(BOX.encrypt(plaintext)).decode()


def _reseal(node):
    """Replaces schema-valid blobs in place, anywhere in the body."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in PAT_KEYS and isinstance(value, str) and PAT.match(value):
                node[key] = _seal(PAT_PLAINTEXT)
            elif key == "encrypted_value" and isinstance(value, str) and VALUE.match(value):
                node[key] = _seal(b"schemathesis value")
            else:
                _reseal(value)
    elif isinstance(node, list):
        for item in node:
            _reseal(item)


LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-[A-Za-z0-9])*$")
SEEDED = {"owner": "local-owner", "repo": "local-repo", "environment": "production", "org": "local-org"}


def _point_targets(node):
    """Targets whose members are all plain strings become the emulator's."""
    if isinstance(node, dict):
        target = node.get("target")
        if (
            isinstance(target, dict)
            and target
            and set(target) <= set(SEEDED)
            and all(isinstance(v, str) and LOGIN.match(v) for v in target.values())
        ):
            node["target"] = {key: SEEDED[key] for key in target}
        for value in node.values():
            _point_targets(value)
    elif isinstance(node, list):
        for item in node:
            _point_targets(item)


@schemathesis.hook
def before_call(context, case, kwargs):
    if isinstance(case.body, (dict, list)):
        if zlib.crc32(json.dumps(case.body, sort_keys=True).encode()) % 3:
            _point_targets(case.body)
        _reseal(case.body)


def _blobs(node, found):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in BLOB_KEYS and isinstance(value, str) and len(value) >= 24:
                found.add(value)
            else:
                _blobs(value, found)
    elif isinstance(node, list):
        for item in node:
            _blobs(item, found)
    return found


@schemathesis.check
def no_sealed_blob_comes_back(ctx, response, case):
    """No sealed blob of the request (or its first 24 characters) is in the answer."""
    text = response.text or ""
    headers = " ".join(f"{k}: {v}" for k, v in dict(response.headers).items())
    for blob in _blobs(case.body, set()):
        for fragment in (blob, blob[:24]):
            if fragment in text or fragment in headers:
                raise AssertionError("a sealed blob of the request came back in the answer")
