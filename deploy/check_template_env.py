#!/usr/bin/env python3
"""The function's environment in deploy/template.yaml is one the service accepts.

Usage: deploy/check_template_env.py TEMPLATE BOOTSTRAP   (run with the python of deploy/tools.sh)

Reads the Function's environment variables from the template (with cfn-lint's decoder), fills
in what CloudFormation would (parameter defaults, sample values for parameters without one and
for the Secrets Manager references, the names of the template's own resources), starts
BOOTSTRAP in Lambda mode with exactly that environment plus the AWS_* variables of this process
(Lambda sets the region and credentials; AWS_ENDPOINT_URL_DYNAMODB points the history at a
stand-in holding the template's table, see deploy/dynamodb-local.sh), and checks that it serves: /info/health answers, /info/status answers "aws-lambda"
with the API key the secret would provide and 401 without it. A variable the service rejects
(a bad number, an unknown log format) makes the binary exit, and this check fail.
"""

import os
import re
import sys

from cfnlint.decode import decode

from cold_start import http_api_event, invoke_fresh

SAMPLES = {
    "Stage": "dev",
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
    if name in template["Resources"]:
        return resource_name(template, name)
    default = template["Parameters"][name].get("Default")
    return str(default) if default is not None else SAMPLES[name]


def resource_name(template, name):
    """What `Ref` gives for a resource of the template that names itself (a table's name)."""
    properties = template["Resources"][name]["Properties"]
    if "TableName" not in properties:
        sys.exit(f"check_template_env.py: cannot tell the name of resource {name}")
    return value(template, properties["TableName"])


def value(template, raw):
    if isinstance(raw, str):
        return raw
    if "Ref" in raw:
        return parameter(template, raw["Ref"])
    if "Fn::Sub" in raw:
        text = re.sub(r"\$\{(\w+)\}", lambda m: parameter(template, m.group(1)), raw["Fn::Sub"])
        if "{{resolve:" not in text:
            return text
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
    lambda_sets = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    key = {SECRET["FAST_API__AUTH__API_KEY__NAME"]: SECRET["FAST_API__AUTH__API_KEY__VALUE"]}
    _, (health, status, refused) = invoke_fresh(sys.argv[2], {**lambda_sets, **env}, [
        http_api_event("/info/health"),
        http_api_event("/info/status", key),
        http_api_event("/info/status"),
    ])
    problems = []
    if health.get("statusCode") != 200:
        problems.append(f"/info/health: {health}")
    if status.get("statusCode") != 200 or '"aws-lambda"' not in status.get("body", ""):
        problems.append(f"/info/status with the key: {status}")
    elif '"history":{"store":"dynamodb","state":"ok"}' not in status.get("body", ""):
        problems.append(f"/info/status does not show the DynamoDB history: {status}")
    if refused.get("statusCode") != 401:
        problems.append(f"/info/status without the key: {refused}")
    if problems:
        sys.exit("check_template_env.py: " + "; ".join(problems))
    print(f"template environment: {len(env)} variables, accepted by the service in Lambda mode, "
          f"history on DynamoDB table {env['DEPLOY__STORE'].removeprefix('dynamodb:')}")


if __name__ == "__main__":
    main()
