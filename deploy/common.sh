# shellcheck shell=bash
# shellcheck disable=SC2034  # its variables are for the scripts that source it
# Sourced by deploy_resources.sh and rollback_resources.sh: where the tools are, the names from
# config.py, the credentials, the names deploy derives, and the one way AWS is called.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEPLOY_DIR="$ROOT/deploy"

# The script's opening comment, as its --help.
usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

die() {
  printf '\nerror: %s\n' "$*" >&2
  exit 1
}

# The project's virtualenv first (`make test` installs the AWS CLI there), then PATH.
if [[ -x "$ROOT/.venv/bin/python" ]]; then
  PY="$ROOT/.venv/bin/python"
else
  PY=$(command -v python3) || die "python3 is required"
fi
if [[ -x "$ROOT/.venv/bin/aws" ]]; then
  AWS="$ROOT/.venv/bin/aws"
else
  AWS=$(command -v aws) || die "the AWS CLI is required: run 'make test' (it installs it into .venv) or install it"
fi

# REGION, BUCKET, TABLE, ROLE, FUNCTION: config.py is the one place these names live.
names=$("$PY" "$DEPLOY_DIR/settings.py" names)
eval "$names"

# secrets.json when present (DICOM_META_SECRETS_FILE points elsewhere, e.g. for tests),
# otherwise the CLI's standard chain: environment, AWS_PROFILE, SSO, an instance role.
SECRETS_FILE="${DICOM_META_SECRETS_FILE:-$ROOT/secrets.json}"
credentials=$("$PY" "$DEPLOY_DIR/settings.py" credentials "$SECRETS_FILE")
eval "$credentials"
if [[ -f "$SECRETS_FILE" ]]; then
  CREDENTIALS_SOURCE="$(basename "$SECRETS_FILE")"
else
  CREDENTIALS_SOURCE="the AWS CLI's default chain${AWS_PROFILE:+ (profile $AWS_PROFILE)}"
fi

# Names deploy derives from config.py's; rollback finds what deploy made by the same names.
DLQ_NAME="${FUNCTION}-dlq"
POLICY_NAME="${FUNCTION}-least-privilege"
PERMISSION_SID="s3-invoke-from-${BUCKET}"
# A fixed Id: without one S3 assigns a random Id on every put and a re-run is not a no-op.
NOTIFICATION_ID="${FUNCTION}-json-ingest"
JSON_PREFIX="json/"
JSON_SUFFIX=".json"
ZIP_FILE="$ROOT/build/lambda.zip"

# The indexer (a second function, for dicom/) and the bulk index's fan-out, named after
# config.py's names in the same way; managers/aws/step_functions.py finds the state machine
# by the same rule.
INDEXER_FUNCTION="${FUNCTION}Indexer"
INDEXER_ROLE="${ROLE}Indexer"
INDEXER_DLQ_NAME="${INDEXER_FUNCTION}-dlq"
INDEXER_POLICY_NAME="${INDEXER_FUNCTION}-least-privilege"
INDEXER_NOTIFICATION_ID="${INDEXER_FUNCTION}-dicom-index"
INDEXER_ZIP_FILE="$ROOT/build/indexer.zip"
DICOM_PREFIX="dicom/"
STATE_MACHINE="${INDEXER_FUNCTION}FanOut"
FAN_OUT_ROLE="${ROLE}IndexerFanOut"
FAN_OUT_POLICY_NAME="${STATE_MACHINE}-least-privilege"
# Where each bulk run on AWS writes what every batch reported (ResultWriter).
RESULTS_PREFIX="index-results/"
# Bucket names are global: a 403 on ours usually means another account owns the name.
BUCKET_403_HINT="a 403 means the bucket belongs to another account or these credentials may not read it"

export AWS_DEFAULT_OUTPUT=json AWS_PAGER=""

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Every AWS call goes through here. The PyPI CLI (v1) ignores AWS_ENDPOINT_URL for some
# services, so the endpoint is passed explicitly; the region is config.py's, whatever the
# profile says.
aws_() {
  local global=(--region "$REGION")
  if [[ -n "${AWS_ENDPOINT_URL:-}" ]]; then
    global+=(--endpoint-url "$AWS_ENDPOINT_URL")
  fi
  "$AWS" "${global[@]}" "$@"
}

# Run a call whose one acceptable failure is "it is not there" (stderr matching $1).
# Returns 0 with the answer in $WORK/out, 1 when absent; any other failure stops the script,
# so a denied or unreachable call is never mistaken for an absent resource. HINT=… before
# the call adds a line of advice to that failure.
probe() {
  local absent=$1
  shift
  if aws_ "$@" >"$WORK/out" 2>"$WORK/err"; then
    return 0
  fi
  if grep -qE "$absent" "$WORK/err"; then
    return 1
  fi
  cat "$WORK/err" >&2
  die "aws $1 $2 failed${HINT:+: $HINT}"
}

# IAM changes take seconds to reach Lambda, S3 and Step Functions: until then Lambda says the
# role "cannot be assumed" or lacks SendMessage, S3 is "unable to validate" the function and
# Step Functions is "not authorized to assume" its role. Retry those
# refusals for about a minute; fail at once on anything else. Output in $WORK/out.
with_iam_retry() {
  local attempt
  for attempt in 1 2 3 4 5 6 7 8 9 10 11 12; do
    if aws_ "$@" >"$WORK/out" 2>"$WORK/err"; then
      return 0
    fi
    if ! grep -qE 'cannot be assumed|does not have permissions|Unable to validate the following destination|not authorized to assume' "$WORK/err"; then
      break
    fi
    say "IAM change not visible yet; retrying in 5 s (attempt $attempt of 12)"
    sleep 5
  done
  cat "$WORK/err" >&2
  die "aws $1 $2 failed"
}

# The value at a dotted path of $WORK/out (or of the file given second).
field() {
  "$PY" "$DEPLOY_DIR/documents.py" field "${2:-$WORK/out}" "$1"
}

STEP=0
STEP_TITLE="before the first step"
step() {
  STEP=$((STEP + 1))
  STEP_TITLE="[$STEP/$STEPS] $*"
  printf '\n%s\n' "$STEP_TITLE"
}

# A command that fails outside probe/with_iam_retry (its own message is above) stops the run.
stopped() {
  printf '\nerror: stopped at %s: the command above failed (line %s of %s).\n' \
    "$STEP_TITLE" "$1" "$(basename "$0")" >&2
  printf 'The steps before it are done; fix the cause and run again (re-running is safe).\n' >&2
}
set -o errtrace
trap 'stopped $LINENO' ERR

say() {
  printf '      %s\n' "$*"
}

# Who we are and where we act, printed before anything changes.
identify() {
  if ! aws_ sts get-caller-identity >"$WORK/identity.json"; then
    die "cannot tell who is calling (sts get-caller-identity failed, see above): check the credentials" \
      "($CREDENTIALS_SOURCE) and that ${AWS_ENDPOINT_URL:-AWS} is reachable"
  fi
  ACCOUNT=$(field Account "$WORK/identity.json")
  CALLER=$(field Arn "$WORK/identity.json")
  # arn:aws:… or arn:aws-cn:… : every ARN we build uses the caller's partition.
  PARTITION=$(cut -d: -f2 <<<"$CALLER")
  printf '%s\n' "$1"
  printf '  account:     %s (%s)\n' "$ACCOUNT" "$CALLER"
  printf '  region:      %s\n' "$REGION"
  printf '  endpoint:    %s\n' "${AWS_ENDPOINT_URL:-AWS (no AWS_ENDPOINT_URL)}"
  printf '  credentials: %s\n' "$CREDENTIALS_SOURCE"
}
