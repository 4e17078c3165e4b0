#!/usr/bin/env python3
"""The function's environment in deploy/template.yaml is one the service accepts.

Usage: deploy/check_template_env.py TEMPLATE BOOTSTRAP   (run with the python of deploy/tools.sh)

Reads the Function's environment variables from the template (with cfn-lint's decoder), fills
in what CloudFormation would (parameter defaults, sample values for parameters without one and
for the Secrets Manager references), starts BOOTSTRAP in Lambda mode with exactly that
environment, and checks that it serves: /info/health answers, /info/status answers "aws-lambda"
with the API key the secret would provide and 401 without it. A variable the service rejects
(a bad number, an unknown log format) makes the binary exit, and this check fail.
"""

import re
import sys

from cfnlint.decode import decode

from cold_start import http_api_event, invoke_fresh

SAMPLES = {
    "GitHubServiceUrl": "https://github.dev.mgraph.ai",
    "ApiKeySecretId": "mgraph-deploy/dev",
    "ApiKeySecretVersion": "00000000-0000-0000-0000-000000000000",
}
SECRET = {
    "FAST_API__AUTH__API_KEY__NAME": "x-api-key",
    "FAST_API__AUTH__API_KEY__VALUE": "a-sample-api-key-value",
    "AUTH__TARGET_SERVER__GITHUB_SERVICE__KEY_NAME": "x-github-service-key",
    "AUTH__TARGET_SERVER__GITHUB_SERVICE__KEY_VALUE": "a-sample-upstream-key",
}
RESOLVE = re.compile(r"^\{\{resolve:secretsmanager:[^:]+:SecretString:([A-Z_]+)::[^}]+\}\}$")


def parameter(template, name):
    default = template["Parameters"][name].get("Default")
    return str(default) if default is not None else SAMPLES[name]


def value(template, raw):
    if isinstance(raw, str):
        return raw
    if "Ref" in raw:
        return parameter(template, raw["Ref"])
    if "Fn::Sub" in raw:
        text = re.sub(r"\$\{(\w+)\}", lambda m: parameter(template, m.group(1)), raw["Fn::Sub"])
        secret = RESOLVE.match(text)
        if not secret:
            sys.exit(f"check_template_env.py: unexpected Fn::Sub {raw}")
        return SECRET[secret.group(1)]
    sys.exit(f"check_template_env.py: unexpected value {raw}")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    template, _ = decode(sys.argv[1])
    variables = template["Resources"]["Function"]["Properties"]["Environment"]["Variables"]
    env = {name: value(template, raw) for name, raw in variables.items()}
    key = {SECRET["FAST_API__AUTH__API_KEY__NAME"]: SECRET["FAST_API__AUTH__API_KEY__VALUE"]}
    _, (health, status, refused) = invoke_fresh(sys.argv[2], env, [
        http_api_event("/info/health"),
        http_api_event("/info/status", key),
        http_api_event("/info/status"),
    ])
    problems = []
    if health.get("statusCode") != 200:
        problems.append(f"/info/health: {health}")
    if status.get("statusCode") != 200 or '"aws-lambda"' not in status.get("body", ""):
        problems.append(f"/info/status with the key: {status}")
    if refused.get("statusCode") != 401:
        problems.append(f"/info/status without the key: {refused}")
    if problems:
        sys.exit("check_template_env.py: " + "; ".join(problems))
    print(f"template environment: {len(env)} variables, accepted by the service in Lambda mode")


if __name__ == "__main__":
    main()
