#!/usr/bin/env bash
# Builds and deploys the service to one stage: the arm64 Lambda zip (deploy/package.sh) is
# uploaded to S3 under its sha256, and the CloudFormation stack mgraph-deploy-<stage>
# (deploy/template.yaml) is created or updated with it. Then the deployed URL is smoke-tested.
#
# Usage: deploy/deploy.sh dev|prod [--zip PATH] [--no-smoke] [--dry-run]
#   --zip PATH   deploy this zip (e.g. CI's artifact) instead of building one
#   --no-smoke   skip deploy/smoke.sh after the deployment
#   --dry-run    check the inputs and print the AWS commands instead of running them
#
# Environment (in CI: variables of the GitHub environment named like the stage):
#   AWS_REGION                   region of the stack, its certificate and its secret
#   DEPLOY_ARTIFACT_BUCKET       S3 bucket for the zips (output of deploy/github-oidc.yaml)
#   DEPLOY_CERTIFICATE_ARN       ACM certificate covering the domain, in AWS_REGION
#   DEPLOY_HOSTED_ZONE_ID        Route 53 hosted zone of the domain
#   DEPLOY_DOMAIN_NAME           default deploy.dev.mgraph.ai for dev; required for prod
#   DEPLOY_GITHUB_SERVICE_URL    default https://github.dev.mgraph.ai for dev; required for prod
#   DEPLOY_SECRET_ID             Secrets Manager secret with the API keys; default mgraph-deploy/<stage>
#   AWS_CLOUDFORMATION_ROLE_ARN  optional: the role CloudFormation acts with (deploy/github-oidc.yaml)
#   DEPLOY_PARAMETERS            optional: more template parameters, "MemorySize=512 LogFilter=debug"
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }

STAGE="${1:-}"
case "$STAGE" in
    dev|prod) shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "deploy.sh: the first argument is the stage, dev or prod" >&2; usage >&2; exit 2 ;;
esac
ZIP=""
SMOKE=1
DRY_RUN=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --zip) ZIP="${2:?--zip needs a path}"; shift 2 ;;
        --no-smoke) SMOKE=0; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        *) echo "deploy.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

if [[ "$STAGE" == dev ]]; then
    DOMAIN_NAME="${DEPLOY_DOMAIN_NAME:-deploy.dev.mgraph.ai}"
    GITHUB_SERVICE_URL="${DEPLOY_GITHUB_SERVICE_URL:-https://github.dev.mgraph.ai}"
else
    DOMAIN_NAME="${DEPLOY_DOMAIN_NAME:-}"
    GITHUB_SERVICE_URL="${DEPLOY_GITHUB_SERVICE_URL:-}"
fi
SECRET_ID="${DEPLOY_SECRET_ID:-mgraph-deploy/$STAGE}"

missing=()
for name in AWS_REGION DEPLOY_ARTIFACT_BUCKET DEPLOY_CERTIFICATE_ARN DEPLOY_HOSTED_ZONE_ID; do
    [[ -n "${!name:-}" ]] || missing+=("$name")
done
[[ -n "$DOMAIN_NAME" ]] || missing+=(DEPLOY_DOMAIN_NAME)
[[ -n "$GITHUB_SERVICE_URL" ]] || missing+=(DEPLOY_GITHUB_SERVICE_URL)
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "deploy.sh: set ${missing[*]} to deploy $STAGE (see deploy/deploy.sh --help)" >&2
    exit 2
fi
if [[ "$GITHUB_SERVICE_URL" != https://* ]]; then
    echo "deploy.sh: DEPLOY_GITHUB_SERVICE_URL must be https://..., not $GITHUB_SERVICE_URL" >&2
    exit 2
fi

# Runs an AWS CLI command, or prints it under --dry-run.
aws_cli() {
    if [[ $DRY_RUN -eq 1 ]]; then
        printf 'aws'; printf ' %q' "$@"; printf '\n'
    else
        aws "$@"
    fi
}

if [[ $DRY_RUN -eq 0 ]] && ! command -v aws >/dev/null; then
    echo "deploy.sh: the AWS CLI (aws) is required" >&2
    exit 2
fi
if [[ -z "$ZIP" ]]; then
    bash "$ROOT/deploy/package.sh" --arch arm64
    ZIP="$ROOT/target/lambda/mgraph-deploy-arm64.zip"
fi
if [[ ! -f "$ZIP" ]]; then
    echo "deploy.sh: no zip at $ZIP" >&2
    exit 2
fi

# The function's architecture is the zip's: e_machine of the ELF header of `bootstrap`.
ARCHITECTURE="$(python3 - "$ZIP" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    if z.namelist() != ["bootstrap"]:
        sys.exit(f"deploy.sh: the zip must hold exactly `bootstrap`, it holds {z.namelist()}")
    header = z.open("bootstrap").read(20)
machines = {0xB7: "arm64", 0x3E: "x86_64"}
machine = int.from_bytes(header[18:20], "little") if header[:4] == b"\x7fELF" else None
if machine not in machines:
    sys.exit("deploy.sh: `bootstrap` in the zip is not an arm64 or x86_64 ELF binary")
print(machines[machine])
PY
)"
SHA="$(sha256sum "$ZIP" | cut -d' ' -f1)"
CODE_KEY="mgraph-deploy/$STAGE/$SHA.zip"
STACK="mgraph-deploy-$STAGE"
echo "deploy.sh: $STACK in $AWS_REGION from $(basename "$ZIP") ($ARCHITECTURE, sha256 $SHA) -> https://$DOMAIN_NAME"

aws_cli s3 cp --only-show-errors "$ZIP" "s3://$DEPLOY_ARTIFACT_BUCKET/$CODE_KEY"

if [[ $DRY_RUN -eq 1 ]]; then
    SECRET_VERSION="00000000-0000-0000-0000-000000000000"
    echo "(dry run: the secret's current VersionId would be read with describe-secret)"
else
    SECRET_VERSION="$(aws secretsmanager describe-secret --secret-id "$SECRET_ID" --output json |
        python3 -c 'import json, sys
stages = json.load(sys.stdin).get("VersionIdsToStages", {})
print(next(v for v, s in stages.items() if "AWSCURRENT" in s))')"
fi

role=()
if [[ -n "${AWS_CLOUDFORMATION_ROLE_ARN:-}" ]]; then
    role=(--role-arn "$AWS_CLOUDFORMATION_ROLE_ARN")
fi
read -r -a extra <<<"${DEPLOY_PARAMETERS:-}"
aws_cli cloudformation deploy \
    --stack-name "$STACK" \
    --template-file "$ROOT/deploy/template.yaml" \
    --capabilities CAPABILITY_IAM \
    --no-fail-on-empty-changeset \
    "${role[@]}" \
    --tags project=mgraph-deploy "stage=$STAGE" \
    --parameter-overrides \
        "Stage=$STAGE" \
        "Architecture=$ARCHITECTURE" \
        "CodeBucket=$DEPLOY_ARTIFACT_BUCKET" \
        "CodeKey=$CODE_KEY" \
        "DomainName=$DOMAIN_NAME" \
        "CertificateArn=$DEPLOY_CERTIFICATE_ARN" \
        "HostedZoneId=$DEPLOY_HOSTED_ZONE_ID" \
        "GitHubServiceUrl=$GITHUB_SERVICE_URL" \
        "ApiKeySecretId=$SECRET_ID" \
        "ApiKeySecretVersion=$SECRET_VERSION" \
        "${extra[@]}"
aws_cli cloudformation describe-stacks --stack-name "$STACK" \
    --query "Stacks[0].Outputs" --output table

if [[ $SMOKE -eq 1 ]]; then
    if [[ $DRY_RUN -eq 1 ]]; then
        echo "bash deploy/smoke.sh https://$DOMAIN_NAME   (API key from $SECRET_ID)"
    else
        DEPLOY_SECRET_ID="$SECRET_ID" bash "$ROOT/deploy/smoke.sh" "https://$DOMAIN_NAME"
    fi
fi
