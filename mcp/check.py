"""Drives `mgraph-deploy-cli mcp` with the official MCP Python SDK's client (see mcp/run.sh).

Against the offline local stack: sets a secret from an environment variable of the server's
process and one generated, applies a .env file, reads presence; then checks that the emulator
holds the values, and that no tool result and no line the server wrote on stderr holds any of
them (or the PAT, or the API key).

Usage: check.py CLI_BINARY DEPLOY_URL KEY_NAME KEY_VALUE EMULATOR_URL EMULATOR_KEY_NAME EMULATOR_KEY_VALUE PAT
"""

import asyncio
import json
import os
import secrets
import sys
import tempfile
import urllib.parse
import urllib.request

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

CLI, DEPLOY, KEY_NAME, KEY_VALUE, EMULATOR, EMULATOR_KEY_NAME, EMULATOR_KEY_VALUE, PAT = sys.argv[1:9]
REPO = "local-owner/local-repo"
RESULTS = {"passed": 0, "failed": []}


def check(label, condition, detail=""):
    if condition:
        RESULTS["passed"] += 1
    else:
        RESULTS["failed"].append(f"{label}: {detail}")
        print(f"FAIL {label}: {str(detail)[:600]}", flush=True)


def stored(name, **where):
    query = urllib.parse.urlencode({"owner": "local-owner", "repo": "local-repo", "name": name, **where})
    request = urllib.request.Request(f"{EMULATOR}/emulator/stored-value?{query}",
                                     headers={EMULATOR_KEY_NAME: EMULATOR_KEY_VALUE})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)["value"]
    except urllib.error.HTTPError:
        return None


async def main():
    from_env_value = "from-env " + secrets.token_urlsafe(18)
    file_values = {"MCP_FILE_ONE": "one " + secrets.token_urlsafe(12), "MCP_FILE_TWO": "two " + secrets.token_hex(10)}
    stderr_path = tempfile.mktemp(prefix="mcp-stderr-")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DEPLOY_SERVICE__URL": DEPLOY,
        "DEPLOY_SERVICE__API_KEY__NAME": KEY_NAME,
        "DEPLOY_SERVICE__API_KEY__VALUE": KEY_VALUE,
        "GIT_HUB__ACCESS_TOKEN": PAT,
        "MCP_CHECK_VALUE": from_env_value,
    }
    results = []
    with tempfile.TemporaryDirectory() as tmp, open(stderr_path, "w") as errlog:
        dotenv = os.path.join(tmp, "agent.env")
        with open(dotenv, "w") as f:
            f.writelines(f"{k}={v}\n" for k, v in file_values.items())
        server = StdioServerParameters(command=CLI, args=["mcp"], env=env)
        async with stdio_client(server, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = {t.name: t for t in (await session.list_tools()).tools}
                wanted = {"list_secrets", "check_presence", "preflight", "plan_apply", "apply",
                          "set_secret", "history", "status"}
                check("tools/list names every tool", wanted <= set(tools), sorted(tools))
                check("every tool says it never returns values",
                      all("never" in (tools[n].description or "").lower() for n in wanted & set(tools)),
                      {n: tools[n].description for n in wanted & set(tools)})

                async def call(name, arguments):
                    result = await session.call_tool(name, arguments)
                    results.append(result.model_dump_json())
                    return result

                r = await call("set_secret", {"name": "MCP_FROM_ENV", "repo": REPO, "from_env": "MCP_CHECK_VALUE"})
                check("set_secret from_env succeeds", not r.is_error, r)
                r = await call("set_secret", {"name": "MCP_GENERATED", "repo": REPO,
                                              "generate": {"length": 40, "alphabet": "hex"}})
                check("set_secret generate succeeds and says it is not shown",
                      not r.is_error and (r.structured_content or {}).get("generated", {}).get("shown") is False, r)
                r = await call("set_secret", {"name": "MCP_NO_SOURCE", "repo": REPO})
                check("set_secret without a source is a tool error pointing at the ui",
                      r.is_error and "mgraph-deploy-cli ui" in json.dumps(r.structured_content), r)
                r = await call("apply", {"file": dotenv, "repo": REPO})
                check("apply writes the file", not r.is_error
                      and (r.structured_content or {}).get("result", {}).get("completed") == 2, r)
                r = await call("check_presence", {"names": ["MCP_FROM_ENV", "MCP_GENERATED", "MCP_FILE_ONE",
                                                            "GITHUB_TOKEN"], "repo": REPO})
                data = ((r.structured_content or {}).get("result") or {}).get("data") or {}
                check("check_presence finds all four", not r.is_error and data.get("all_present") is True, r)

    check("the emulator holds the environment variable's value", stored("MCP_FROM_ENV") == from_env_value)
    generated = stored("MCP_GENERATED")
    check("the emulator holds a generated value of 40 hex characters",
          generated is not None and len(generated) == 40 and all(c in "0123456789abcdef" for c in generated),
          len(generated or ""))
    for name, value in file_values.items():
        check(f"the emulator holds {name} from the file", stored(name) == value)
    stderr = open(stderr_path).read()
    os.unlink(stderr_path)
    text = "\n".join(results) + "\n" + stderr
    leaked = [label for label, secret in [("from_env value", from_env_value), ("generated value", generated),
                                          ("PAT", PAT), ("API key", KEY_VALUE),
                                          *[(n, v) for n, v in file_values.items()]]
              if secret and secret in text]
    check(f"no value, PAT or key in {len(results)} tool results or {len(stderr.splitlines())} stderr lines",
          not leaked, leaked)
    total = RESULTS["passed"] + len(RESULTS["failed"])
    print(f"mcp (Python SDK): {RESULTS['passed']}/{total} checks passed", flush=True)
    sys.exit(1 if RESULTS["failed"] else 0)


asyncio.run(main())
