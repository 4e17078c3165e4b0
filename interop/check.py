"""End-to-end checks of the Deploy Service against the real GitHub Service (see interop/run.sh).

Seals with PyNaCl exactly as a client would, calls the Deploy Service over HTTP, reads back what
GitHub (the surrogate) stored, and checks the Deploy Service's log for any part of a sealed blob.

Then drives the same service with our own client, `mgraph-deploy-cli`, which seals with Rust's
crypto_box: the real GitHub Service must open what it sealed.

Last, the service's history (its SQLite file): the CLI reads the bootstrap back, and no byte of
the file holds a PAT, a value or any part of a sealed blob.

Usage: check.py GS_INFO_JSON DEPLOY_URL DEPLOY_KEY_NAME DEPLOY_KEY_VALUE DEPLOY_LOG_FILE CLI_BINARY
                HISTORY_SQLITE_FILE
"""

import base64
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time

import requests
from nacl.public import PrivateKey, PublicKey, SealedBox

gs = json.load(open(sys.argv[1]))
DEPLOY, KEY_NAME, KEY_VALUE, LOG_FILE, CLI, HISTORY_FILE = sys.argv[2:8]
OWNER, REPO, ENV, ORG = gs["owner"], gs["repo"], gs["environment"], gs["org"]
PATS = gs["pats"]
HEADERS = {KEY_NAME: KEY_VALUE}

SEALED = []  # every blob sent, to search the log for
RESULTS = {"passed": 0, "failed": []}


def seal(text: str, public_key_hex: str = None) -> str:
    key = PublicKey(bytes.fromhex(public_key_hex or gs["public_key"]))
    blob = base64.b64encode(SealedBox(key).encrypt(text.encode())).decode()
    SEALED.append(blob)
    return blob


def post(verb: str, body: dict):
    started = time.monotonic()
    r = requests.post(f"{DEPLOY}/operations/github/secrets/{verb}", json=body, headers=HEADERS, timeout=30)
    return r.status_code, r.json(), time.monotonic() - started


def plaintext(scope: str, name: str, **where):
    r = requests.get(f"{gs['control_url']}/plaintext", params={"scope": scope, "name": name, **where}, timeout=10)
    return r.json() if r.status_code == 200 else None


def check(label: str, condition: bool, detail=""):
    if condition:
        RESULTS["passed"] += 1
    else:
        RESULTS["failed"].append(f"{label}: {detail}")
        print(f"FAIL {label}: {detail}", flush=True)


def expect(label, verb, body, status, error_type=None, **data):
    code, envelope, _ = post(verb, body)
    ok = code == status and envelope.get("error_type") == error_type
    ok = ok and all(envelope["data"].get(k) == v for k, v in data.items())
    check(label, ok, f"HTTP {code} {json.dumps(envelope)[:400]}")
    return envelope


TARGETS = {
    "repo": {"owner": OWNER, "repo": REPO},
    "environment": {"owner": OWNER, "repo": REPO, "environment": ENV},
    "org": {"org": ORG},
}
READBACK = {
    "repo": {"owner": OWNER, "repo": REPO},
    "environment": {"owner": OWNER, "repo": REPO, "environment": ENV},
    "org": {"org": ORG},
}


def lifecycle(scope: str):
    target = TARGETS[scope]
    pat = seal(PATS["admin"])
    name = f"INTEROP_{scope.upper()}_{secrets.token_hex(3).upper()}"
    value = f"v-{scope}-{secrets.token_urlsafe(12)}\nsecond line, ünïcode ✓"
    expect(f"{scope}: create", "create",
           {"encrypted_pat": pat, "target": target, "secret_name": name, "encrypted_value": seal(value)},
           200, created=True, secret_name=name, scope=scope)
    stored = plaintext(scope, name, **READBACK[scope])
    check(f"{scope}: stored plaintext equals what was sealed", stored and stored["plaintext"] == value, stored)
    listed = expect(f"{scope}: list", "list", {"encrypted_pat": pat, "target": target}, 200, scope=scope)
    check(f"{scope}: list shows the secret", any(s["name"] == name for s in listed["data"].get("secrets", [])), listed)
    check(f"{scope}: list reports GitHub's rate limit", listed.get("rate_limit") is not None, listed)
    got = expect(f"{scope}: get", "get", {"encrypted_pat": pat, "target": target, "secret_name": name}, 200)
    check(f"{scope}: get returns the metadata", got["data"].get("secret", {}).get("name") == name, got)
    expect(f"{scope}: exists true", "exists", {"encrypted_pat": pat, "target": target, "secret_name": name},
           200, exists=True)
    new_value = value + " (rotated)"
    expect(f"{scope}: overwrite", "create",
           {"encrypted_pat": pat, "target": target, "secret_name": name, "encrypted_value": seal(new_value)},
           200, created=True)
    stored = plaintext(scope, name, **READBACK[scope])
    check(f"{scope}: overwrite stored the new plaintext", stored and stored["plaintext"] == new_value, stored)
    expect(f"{scope}: delete", "delete", {"encrypted_pat": pat, "target": target, "secret_name": name},
           200, deleted=True)
    check(f"{scope}: deleted from GitHub", plaintext(scope, name, **READBACK[scope]) is None)
    expect(f"{scope}: exists false after delete", "exists",
           {"encrypted_pat": pat, "target": target, "secret_name": name}, 200, exists=False)
    expect(f"{scope}: get after delete is not_found", "get",
           {"encrypted_pat": pat, "target": target, "secret_name": name}, 404, "not_found")
    expect(f"{scope}: delete again is not_found", "delete",
           {"encrypted_pat": pat, "target": target, "secret_name": name}, 404, "not_found")


def org_visibility():
    pat = seal(PATS["org_admin"])
    expect("org: create with visibility selected", "create",
           {"encrypted_pat": pat, "target": TARGETS["org"], "secret_name": "INTEROP_SELECTED",
            "encrypted_value": seal("s"), "visibility": "selected", "repo_ids": [1, 2]}, 200, created=True)
    stored = plaintext("org", "INTEROP_SELECTED", org=ORG)
    check("org: visibility stored as selected", stored and stored.get("visibility") == "selected", stored)


def pat_failures():
    repo = TARGETS["repo"]
    for kind, status, error_type in [
        ("expired", 401, "invalid_pat"),
        ("invalid", 401, "invalid_pat"),
        ("no_scopes", 403, "forbidden"),
        ("env_only", 403, "forbidden"),
        ("rate_limited", 429, "rate_limited"),
    ]:
        pat = seal(PATS[kind])
        for verb, extra in [("list", {}), ("get", {"secret_name": "ANY"}), ("exists", {"secret_name": "ANY"}),
                            ("create", {"secret_name": "ANY", "encrypted_value": seal("x")}),
                            ("delete", {"secret_name": "ANY"})]:
            body = {"encrypted_pat": pat, "target": repo, **extra}
            expect(f"PAT {kind}: {verb} -> {status} {error_type}", verb, body, status, error_type)
    # May read, may not write: the write failure cannot be diagnosed precisely.
    pat = seal(PATS["repo_read"])
    expect("PAT repo_read: list works", "list", {"encrypted_pat": pat, "target": repo}, 200)
    envelope = expect("PAT repo_read: create -> 502 upstream_ambiguous", "create",
                      {"encrypted_pat": pat, "target": repo, "secret_name": "RO", "encrypted_value": seal("x")},
                      502, "upstream_ambiguous")
    check("PAT repo_read: ambiguity names write permission", "write permission" in envelope.get("error", ""), envelope)
    pat = seal(PATS["repo_write"])
    for verb, extra in [("list", {}), ("create", {"secret_name": "ORGX", "encrypted_value": seal("x")})]:
        expect(f"PAT repo_write on an org: {verb} -> 403 forbidden", verb,
               {"encrypted_pat": pat, "target": TARGETS["org"], **extra}, 403, "forbidden")


def token_check():
    """POST /operations/github/token/check over the real GitHub Service's GET /auth/test."""
    def check_token(kind, target=None, pat=None):
        body = {"encrypted_pat": pat or seal(PATS[kind])}
        if target is not None:
            body["target"] = target
        r = requests.post(f"{DEPLOY}/operations/github/token/check", json=body, headers=HEADERS, timeout=30)
        return r.status_code, r.json()

    code, env = check_token("admin", TARGETS["repo"])
    data = env.get("data", {})
    check("token check: admin -> 200 with the surrogate's login",
          code == 200 and str(data.get("login", "")).startswith("surrogate"), (code, env))
    check("token check: GitHub's rate limit is reported",
          (data.get("rate_limit") or {}).get("limit") == 5000 and env.get("rate_limit") is not None, env)
    check("token check: admin can read the repository's secrets",
          (data.get("target") or {}).get("can_read_secrets") is True, env)
    code, env = check_token("admin", {"owner": OWNER, "repo": "no-such-repo"})
    access = env.get("data", {}).get("target") or {}
    check("token check: a missing repository cannot be read (not_found)",
          code == 200 and access.get("can_read_secrets") is False and access.get("error_type") == "not_found", env)
    code, env = check_token("repo_write", TARGETS["org"])
    access = env.get("data", {}).get("target") or {}
    check("token check: repo_write cannot read an organisation's secrets (forbidden)",
          code == 200 and access.get("can_read_secrets") is False and access.get("error_type") == "forbidden", env)
    code, env = check_token("no_scopes", TARGETS["repo"])
    access = env.get("data", {}).get("target") or {}
    check("token check: a PAT without scopes logs in but cannot read secrets",
          code == 200 and access.get("can_read_secrets") is False, env)
    for kind, status, error_type in [("expired", 401, "invalid_pat"), ("invalid", 401, "invalid_pat"),
                                     ("rate_limited", 429, "rate_limited")]:
        code, env = check_token(kind)
        check(f"token check: {kind} -> {status} {error_type}",
              code == status and env.get("error_type") == error_type and env.get("data") == {}, (code, env))
    other = PrivateKey.generate().public_key.encode().hex()
    code, env = check_token("admin", pat=seal(PATS["admin"], other))
    check("token check: a PAT sealed to another key -> 422 decryption_failed",
          code == 422 and env.get("error_type") == "decryption_failed", (code, env))


def missing_things():
    pat = seal(PATS["admin"])
    nowhere = {"owner": OWNER, "repo": "no-such-repo"}
    expect("missing repo: get -> 404", "get", {"encrypted_pat": pat, "target": nowhere, "secret_name": "A"},
           404, "not_found")
    expect("missing repo: create -> 404", "create",
           {"encrypted_pat": pat, "target": nowhere, "secret_name": "A", "encrypted_value": seal("x")}, 404, "not_found")
    expect("missing org: list -> 404", "list", {"encrypted_pat": pat, "target": {"org": "no-such-org"}}, 404,
           "not_found")
    no_env = {"owner": OWNER, "repo": REPO, "environment": "no-such-env"}
    envelope = expect("missing environment: create -> 404", "create",
                      {"encrypted_pat": pat, "target": no_env, "secret_name": "A", "encrypted_value": seal("x")},
                      404, "not_found")
    check("missing environment: the message names it", "no-such-env" in envelope.get("error", ""), envelope)
    expect("missing environment: env_fallback writes the repo secret", "create",
           {"encrypted_pat": pat, "target": no_env, "secret_name": "FALLBACK", "encrypted_value": seal("fb"),
            "env_fallback": "repo"}, 200, scope="repo", env_fallback=True)
    stored = plaintext("repo", "FALLBACK", owner=OWNER, repo=REPO)
    check("env_fallback: stored in the repository", stored and stored["plaintext"] == "fb", stored)


def decryption():
    other = PrivateKey.generate().public_key.encode().hex()
    pat = seal(PATS["admin"])
    expect("value sealed to another key -> 422", "create",
           {"encrypted_pat": pat, "target": TARGETS["repo"], "secret_name": "A", "encrypted_value": seal("x", other)},
           422, "decryption_failed")
    expect("PAT sealed to another key -> 422", "list",
           {"encrypted_pat": seal(PATS["admin"], other), "target": TARGETS["repo"]}, 422, "decryption_failed")
    envelope = expect("PAT with a trailing newline -> 422", "list",
                      {"encrypted_pat": seal(PATS["admin"] + "\n"), "target": TARGETS["repo"]}, 422, "decryption_failed")
    check("trailing newline is explained", "newline" in envelope.get("error", ""), envelope)


def presence():
    pat = seal(PATS["admin"])
    for target, name, value in [(TARGETS["repo"], "SHARED", "repo"), (TARGETS["environment"], "SHARED", "env"),
                                (TARGETS["repo"], "REPO_ONLY", "r")]:
        expect(f"presence setup {name}", "create",
               {"encrypted_pat": pat, "target": target, "secret_name": name, "encrypted_value": seal(value)}, 200)
    envelope = expect("presence", "presence",
                      {"encrypted_pat": pat, "target": TARGETS["environment"],
                       "required": ["SHARED", "REPO_ONLY", "GITHUB_TOKEN", "ABSENT"]}, 200, all_present=False)
    got = {s["name"]: s["scope"] for s in envelope["data"].get("secrets", [])}
    check("presence scopes", got == {"SHARED": "environment", "REPO_ONLY": "repo", "GITHUB_TOKEN": "builtin",
                                     "ABSENT": None}, got)


def invalid_input_never_reaches_upstream():
    pat = seal(PATS["admin"])
    expect("invalid secret name -> 400", "create",
           {"encrypted_pat": pat, "target": TARGETS["repo"], "secret_name": "GITHUB_X", "encrypted_value": seal("x")},
           400, "invalid_input")
    expect("typo in target -> 400", "list",
           {"encrypted_pat": pat, "target": {"owner": OWNER, "repo": REPO, "enviroment": ENV}}, 400, "invalid_input")


def public_key():
    r = requests.get(f"{DEPLOY}/public-keys/github", headers=HEADERS, timeout=10)
    check("public key is the GitHub Service's", r.status_code == 200 and r.json()["public_key"] == gs["public_key"],
          r.text)
    r = requests.get(f"{DEPLOY}/public-keys/github", timeout=10)
    check("public key needs this service's API key", r.status_code == 401, r.text)


def post_workflow(path: str, workflow: dict):
    r = requests.post(f"{DEPLOY}{path}", json=workflow, headers=HEADERS, timeout=120)
    return r.status_code, r.json()


def seed_workflow():
    """The product brief's bootstrap: six secrets into a repository in one /execute."""
    target = {"owner": OWNER, "repo": REPO}
    values = {
        "AWS_ACCOUNT_ID": "123456789012",
        "AWS_DEFAULT_REGION": "eu-west-2",
        "AWS_ACCESS_KEY_ID": "AKIA" + secrets.token_hex(8).upper(),
        "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(30),
        "FAST_API__AUTH__API_KEY__NAME": "x-api-key",
        "FAST_API__AUTH__API_KEY__VALUE": secrets.token_hex(16),
    }
    workflow = {"credentials": {"github_pat": seal(PATS["admin"])}, "target": target,
                "operations": [{"type": "github:secrets:create", "secret_name": n, "encrypted_value": seal(v)}
                               for n, v in values.items()]}
    code, plan = post_workflow("/execute/plan", dict(workflow, options={"check_state": True}))
    actions = [s["action"] for s in plan.get("plan", [])]
    check("seed workflow: plan with state says create x6", code == 200 and actions == ["create"] * 6, plan)
    code, report = post_workflow("/execute", workflow)
    check("seed workflow: 6 completed, HTTP 200", code == 200 and report.get("completed") == 6, report)
    for name, value in values.items():
        stored = plaintext("repo", name, owner=OWNER, repo=REPO)
        check(f"seed workflow: {name} stored intact", stored and stored["plaintext"] == value, stored)
    code, plan = post_workflow("/execute/plan", dict(workflow, options={"check_state": True}))
    actions = [s["action"] for s in plan.get("plan", [])]
    check("seed workflow: planned again, every write is an update", actions == ["update"] * 6, plan)


def mixed_workflow():
    """100 operations over three scopes, with deletes, re-creates and reads, at concurrency 8:
    the result must equal running them one by one in file order."""
    repo = {"owner": OWNER, "repo": "second-repo"}
    env = {"owner": OWNER, "repo": REPO, "environment": ENV}
    org = {"org": ORG}
    ops, expected = [], {}  # expected: (scope, name) -> plaintext or None

    def create(target, scope, name, value):
        ops.append({"type": "github:secrets:create", "secret_name": name, "encrypted_value": seal(value),
                    "target": target})
        expected[(scope, name)] = value

    def delete(target, scope, name):
        ops.append({"type": "github:secrets:delete", "secret_name": name, "target": target})
        expected[(scope, name)] = None

    for i in range(30):
        create(repo, "repo", f"MIX_{i:02}", f"repo-{i}")
    for i in range(20):
        create(env, "environment", f"MIX_ENV_{i:02}", f"env-{i}")
    for i in range(15):
        create(org, "org", f"MIX_ORG_{i:02}", f"org-{i}")
    for i in range(10):
        delete(repo, "repo", f"MIX_{i:02}")
    for i in range(5):
        create(repo, "repo", f"MIX_{i:02}", f"repo-{i}-again")
    for i in range(10, 15):
        ops.append({"type": "github:secrets:get", "secret_name": f"MIX_{i:02}", "target": repo})
    for i in range(5):
        ops.append({"type": "github:secrets:exists", "secret_name": f"MIX_ENV_{i:02}", "target": env})
    ops.append({"type": "github:secrets:list", "target": repo})
    list_step = len(ops)
    names_at_list = sorted(n for (sc, n), v in expected.items() if sc == "repo" and v is not None)
    ops.append({"type": "github:secrets:list", "target": env})
    ops.append({"type": "github:secrets:presence", "target": repo, "required": ["MIX_00", "MIX_05", "GITHUB_TOKEN"]})
    ops.append({"type": "github:secrets:presence", "target": repo, "required": ["MIX_29"]})
    ops.append({"type": "github:secrets:presence", "target": env, "required": ["MIX_ENV_00"]})
    for i in range(5):
        ops.append({"type": "github:secrets:delete", "secret_name": f"NEVER_EXISTED_{i}", "target": repo})
    assert len(ops) == 100, len(ops)

    workflow = {"credentials": {"github_pat": seal(PATS["admin"])}, "options": {"concurrency": 8},
                "operations": ops}
    code, report = post_workflow("/execute", workflow)
    check("mixed workflow: 100 completed, HTTP 200",
          code == 200 and report.get("completed") == 100, json.dumps(report)[:600])
    results = report.get("results", [])
    listed = sorted(s["name"] for s in results[list_step - 1]["data"].get("secrets", [])) if results else None
    check("mixed workflow: the list saw exactly the earlier writes and deletes", listed == names_at_list,
          f"{listed} != {names_at_list}")
    presence = results[len(ops) - 8]["data"] if results else {}
    got = {p["name"]: p["present"] for p in presence.get("secrets", [])}
    check("mixed workflow: presence saw the re-create and the delete",
          got == {"MIX_00": True, "MIX_05": False, "GITHUB_TOKEN": True}, got)
    absent = [r["data"].get("deleted") for r in results[-5:]]
    check("mixed workflow: deleting absent secrets completes with deleted false", absent == [False] * 5, absent)
    where = {"repo": repo, "environment": env, "org": org}
    wrong = []
    for (scope, name), value in expected.items():
        stored = plaintext(scope, name, **where[scope])
        if (stored or {}).get("plaintext") != value:
            wrong.append((scope, name, value, stored))
    check("mixed workflow: final state equals the sequential outcome", not wrong, wrong[:3])


# A .env in the shapes people write, and the values it must yield.
CLI_DOTENV = """# bootstrap through mgraph-deploy-cli
CLI_AWS_ACCOUNT_ID=123456789012
CLI_AWS_DEFAULT_REGION="eu-west-2"
CLI_AWS_ACCESS_KEY_ID='AKIAEXAMPLEEXAMPLE01'
CLI_AWS_SECRET_ACCESS_KEY='wJalrXUtnFEMI/K7MDENG/bPxRfiCY+EXAMPLE=KEY'
CLI_API_KEY_NAME="x-partner-api-key"
CLI_API_KEY_VALUE="first line ünïcode €
second line with 'quotes' and a # hash"
"""
CLI_VALUES = {
    "CLI_AWS_ACCOUNT_ID": "123456789012",
    "CLI_AWS_DEFAULT_REGION": "eu-west-2",
    "CLI_AWS_ACCESS_KEY_ID": "AKIAEXAMPLEEXAMPLE01",
    "CLI_AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCY+EXAMPLE=KEY",
    # Not the service's own key name, which the audit trail logs (as the caller).
    "CLI_API_KEY_NAME": "x-partner-api-key",
    "CLI_API_KEY_VALUE": "first line ünïcode €\nsecond line with 'quotes' and a # hash",
}


def cli(*args, pat="admin", stdin=None, key_value=None):
    """Runs mgraph-deploy-cli with only the variables a CI job would set."""
    env = {"PATH": os.environ.get("PATH", ""),
           "DEPLOY_SERVICE__URL": DEPLOY,
           "DEPLOY_SERVICE__API_KEY__NAME": KEY_NAME,
           "DEPLOY_SERVICE__API_KEY__VALUE": key_value or KEY_VALUE}
    if pat:
        env["GIT_HUB__ACCESS_TOKEN"] = PATS[pat]
    done = subprocess.run([CLI, *args], input=stdin, capture_output=True, text=True, env=env, timeout=120)
    return done.returncode, done.stdout, done.stderr


def cli_checks():
    repo = f"{OWNER}/{REPO}"
    with tempfile.TemporaryDirectory() as tmp:
        dotenv = os.path.join(tmp, "bootstrap.env")
        open(dotenv, "w", encoding="utf-8").write(CLI_DOTENV)

        code, out, err = cli("--json", "apply", "-f", dotenv, "--repo", repo, "--dry-run", "--check-state")
        actions = [s["action"] for s in json.loads(out or "{}").get("plan", [])]
        check("cli: apply --dry-run --check-state plans 6 creates", code == 0 and actions == ["create"] * 6, (code, actions, err[-300:]))

        code, out, err = cli("--json", "apply", "-f", dotenv, "--repo", repo)
        report = json.loads(out or "{}")
        check("cli: apply writes 6 secrets in one /execute", code == 0 and report.get("completed") == 6, (code, err[-300:]))
        for name, value in CLI_VALUES.items():
            stored = plaintext("repo", name, owner=OWNER, repo=REPO)
            check(f"cli: {name} stored intact (sealed by Rust, opened by the GitHub Service)",
                  stored and stored["plaintext"] == value, stored)
        leaked = [v for v in CLI_VALUES.values() if len(v) > 8 and (v in out or v in err)]
        check("cli: no plaintext in apply's output", not leaked, leaked)

        # Converging against the real GitHub Service: the values the service wrote, unchanged
        # since (by their fingerprints and GitHub's updated_at), are not written again.
        code, out, err = cli("apply", "-f", dotenv, "--repo", repo, "--dry-run", "--check-state")
        check("cli: a second dry run plans 6 unchanged", code == 0 and out.count(" unchanged ") == 6, out)
        code, out, err = cli("--json", "apply", "-f", dotenv, "--repo", repo)
        report = json.loads(out or "{}")
        actions = [r.get("action") for r in report.get("results", [])]
        check("cli: re-applying the same file writes nothing and says so",
              code == 0 and actions == ["unchanged"] * 6, (code, actions, err[-300:]))
        code, out, err = cli("--json", "status", "--repo", repo)
        states = {s["name"]: s["state"] for s in (json.loads(out or "{}").get("data") or {}).get("secrets", [])}
        check("cli: status shows the six the service wrote in sync",
              code == 0 and all(states.get(name) == "in_sync" for name in CLI_VALUES), (code, states, err[-300:]))

    code, _, err = cli("secret", "set", "CLI_ENV_SECRET", "--repo", repo, "--env", ENV, stdin="env value")
    stored = plaintext("environment", "CLI_ENV_SECRET", owner=OWNER, repo=REPO, environment=ENV)
    check("cli: secret set --env stores the stdin value", code == 0 and stored and stored["plaintext"] == "env value", (code, err, stored))
    code, _, _ = cli("secret", "exists", "CLI_ENV_SECRET", "--repo", repo, "--env", ENV)
    check("cli: secret exists exits 0 when present", code == 0, code)
    code, _, _ = cli("secret", "delete", "CLI_ENV_SECRET", "--repo", repo, "--env", ENV)
    check("cli: secret delete exits 0", code == 0, code)
    code, _, _ = cli("secret", "exists", "CLI_ENV_SECRET", "--repo", repo, "--env", ENV)
    check("cli: secret exists exits 1 once deleted", code == 1, code)

    code, _, err = cli("secret", "set", "CLI_ORG_SECRET", "--org", ORG, "--visibility", "all", stdin="org value")
    stored = plaintext("org", "CLI_ORG_SECRET", org=ORG)
    check("cli: org secret stored with its visibility",
          code == 0 and stored and stored["plaintext"] == "org value" and stored.get("visibility") == "all", (code, err, stored))

    code, out, _ = cli("--json", "secret", "list", "--repo", repo, pat="expired")
    check("cli: an expired PAT exits 1 with invalid_pat", code == 1 and json.loads(out).get("error_type") == "invalid_pat", (code, out))
    code, out, _ = cli("--json", "secret", "set", "CLI_RO", "--repo", repo, pat="repo_read", stdin="v")
    check("cli: a read-only PAT's write exits 1 with upstream_ambiguous",
          code == 1 and json.loads(out).get("error_type") == "upstream_ambiguous", (code, out))
    code, out, err = cli("auth", "status", "--repo", repo)
    check("cli: auth status names the login and read access", code == 0
          and "Logged in to GitHub as surrogate" in out and f"Can read the secrets of {repo}" in out, (code, out, err))
    code, out, err = cli("auth", "status", "--repo", repo, pat="expired")
    check("cli: auth status with an expired PAT exits 1", code == 1 and "rejected the PAT" in err, (code, out, err))
    code, out, _ = cli("--json", "presence", "--require", "CLI_AWS_ACCOUNT_ID,GITHUB_TOKEN", "--repo", repo)
    check("cli: presence exits 0 when all are present", code == 0 and json.loads(out)["data"]["all_present"], (code, out))
    code, _, _ = cli("public-key", key_value="wrong-key")
    check("cli: a wrong API key exits 3", code == 3, code)

    code, blob, err = cli("seal", pat=None, stdin="hand sealed by the cli")
    with tempfile.TemporaryDirectory() as tmp:
        workflow = os.path.join(tmp, "workflow.json")
        json.dump({"target": {"owner": OWNER, "repo": REPO},
                   "operations": [{"type": "github:secrets:create", "secret_name": "CLI_HAND_SEALED",
                                   "encrypted_value": blob.strip()}]}, open(workflow, "w"))
        code, out, err = cli("run", workflow)
    stored = plaintext("repo", "CLI_HAND_SEALED", owner=OWNER, repo=REPO)
    check("cli: seal + run: a hand-built workflow's value arrives intact",
          code == 0 and stored and stored["plaintext"] == "hand sealed by the cli", (code, err[-300:], stored))


def history_checks():
    repo = f"{OWNER}/{REPO}"
    code, out, err = cli("--json", "history", "--repo", repo, "--limit", "100")
    executions = json.loads(out or "{}").get("data", {}).get("executions", [])
    bootstraps = [e for e in executions if e["route"] == "POST /execute" and e["total"] == 6
                  and e["completed"] == 6 and e["caller"] == KEY_NAME]
    # Newest first: the CLI's apply came after the seed brief's six-step workflow.
    check("history: the CLI's bootstrap is in the repository's history", code == 0 and bootstraps,
          (code, err[-300:], executions[:3]))
    if bootstraps:
        code, out, err = cli("--json", "history", "show", bootstraps[0]["id"])
        steps = json.loads(out or "{}").get("data", {}).get("execution", {}).get("steps", [])
        check("history show: its six steps, each written, by name",
              code == 0 and sorted(s["secret_name"] for s in steps) == sorted(CLI_VALUES)
              and all(s["outcome"] == "written" and s["scope"] == "repo" for s in steps), (code, steps))
        code, _, _ = cli("history", "show", bootstraps[0]["id"], pat="expired")
        check("history show: an expired PAT sees nothing (exit 1)", code == 1, code)
    code, out, _ = cli("--json", "history", "--repo", repo, pat="expired")
    check("history: an expired PAT is refused as list refuses it",
          code == 1 and json.loads(out).get("error_type") == "invalid_pat", (code, out))


def history_has_no_secret():
    raw = b"".join(open(HISTORY_FILE + suffix, "rb").read()
                   for suffix in ["", "-wal", "-shm"] if os.path.exists(HISTORY_FILE + suffix))
    text = raw.decode("utf-8", errors="replace")
    check("the history file holds the executions", f"{OWNER}/{REPO}" in text, len(raw))
    leaks = [blob[i:i + 16] for blob in SEALED for i in range(0, len(blob) - 16, 8) if blob[i:i + 16] in text]
    check(f"no part of {len(SEALED)} sealed blobs in the history's {len(raw)} bytes", not leaks, leaks[:3])
    plain = [p for p in PATS.values() if p in text]
    check("no PAT in the history", not plain, plain)
    values = [v for v in CLI_VALUES.values() if len(v) > 8 and v in text]
    check("no value in the history", not values, values)
    check("no API key value in the history", KEY_VALUE not in text)


def log_has_no_blob():
    log = open(LOG_FILE, encoding="utf-8", errors="replace").read()
    check("the service logged requests", "request completed" in log, log[-500:])
    leaks = [blob[i:i + 16] for blob in SEALED for i in range(0, len(blob) - 16, 8) if blob[i:i + 16] in log]
    check(f"no part of {len(SEALED)} sealed blobs in {len(log.splitlines())} log lines", not leaks, leaks[:3])
    plain = [p for p in PATS.values() if p in log]
    check("no PAT in the log", not plain, plain)
    values = [v for v in CLI_VALUES.values() if len(v) > 8 and v in log]
    check("no plaintext written by the CLI in the log", not values, values)


def main():
    started = time.monotonic()
    public_key()
    for scope in ["repo", "environment", "org"]:
        lifecycle(scope)
    org_visibility()
    pat_failures()
    token_check()
    missing_things()
    decryption()
    presence()
    invalid_input_never_reaches_upstream()
    seed_workflow()
    mixed_workflow()
    cli_checks()
    history_checks()
    log_has_no_blob()
    history_has_no_secret()
    total = RESULTS["passed"] + len(RESULTS["failed"])
    print(f"interop: {RESULTS['passed']}/{total} checks passed in {time.monotonic() - started:.1f} s", flush=True)
    sys.exit(1 if RESULTS["failed"] else 0)


if __name__ == "__main__":
    main()
