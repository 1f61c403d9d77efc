#!/usr/bin/env bash
# Create, or converge, the AWS side of dicom-meta: the DynamoDB table, a dead-letter queue,
# the Lambda's role and least-privilege policy, the Lambda itself, its async-invoke settings,
# S3's permission to invoke it and the bucket notification that does. Safe to re-run: a
# second run changes nothing but the Lambda code.
#
# Usage: bash deploy/deploy_resources.sh
# Names and region come from config.py; credentials from secrets.json when present, else the
# AWS CLI's standard chain. AWS_ENDPOINT_URL points every call at another endpoint (a moto
# server in the tests, the embedded AWS of `make run`).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [[ $# -gt 0 ]]; then
  usage
  if [[ $1 == -h || $1 == --help ]]; then
    exit 0
  fi
  die "unexpected argument: $1"
fi

# shellcheck disable=SC2034  # read by step() in common.sh
STEPS=9
RUNTIME=python3.13
HANDLER=lambda_function.lambda_handler
# One S3 event carries one record in practice; per record the handler makes one S3 GET of a
# small JSON document and one PutItem, each bounded near 5 s by botocore's timeouts and
# retries (managers/aws.py). 30 s covers that with room for a cold start; longer would only
# hold a failing invocation longer before Lambda retries it.
TIMEOUT=30
# Memory also buys CPU: at 256 MB importing boto3 on a cold start takes about half as long as
# at 128 MB, for a function that runs a few hundred milliseconds per upload.
MEMORY=256
# Lambda retries a failed async invocation at most twice. The handler's write is idempotent
# (PutItem of the same key), so retrying a whole event is safe; after the retries the event
# goes to the DLQ. Events older than 6 hours (the maximum) are given up on and sent there too.
MAX_RETRIES=2
MAX_EVENT_AGE=21600
# 14 days, SQS's maximum: a failed event is kept long enough for someone to notice and replay it.
DLQ_RETENTION=1209600

ensure_bucket() {
  step "S3 bucket $BUCKET"
  if HINT="$BUCKET_403_HINT" probe '\(404\)|Not Found|NoSuchBucket' s3api head-bucket --bucket "$BUCKET"; then
    aws_ s3api get-bucket-location --bucket "$BUCKET" >"$WORK/out"
    local location
    location=$(field LocationConstraint)
    # S3 reports us-east-1 as no constraint at all.
    [[ $location == null || -z $location ]] && location=us-east-1
    if [[ $location != "$REGION" ]]; then
      die "bucket $BUCKET is in $location, but config.py says $REGION: S3 notifies only functions in its own region"
    fi
    say "exists, in $REGION"
    BUCKET_STATE="exists"
  else
    if [[ $REGION == us-east-1 ]]; then
      aws_ s3api create-bucket --bucket "$BUCKET" >/dev/null
    else
      aws_ s3api create-bucket --bucket "$BUCKET" \
        --create-bucket-configuration "LocationConstraint=$REGION" >/dev/null
    fi
    say "created in $REGION: it did not exist (rollback never deletes the bucket)"
    BUCKET_STATE="created by this run"
  fi
}

ensure_table() {
  step "DynamoDB table $TABLE"
  local query='Table.[TableArn, KeySchema[0].AttributeName, KeySchema[0].KeyType, length(KeySchema), BillingModeSummary.BillingMode]'
  if probe ResourceNotFoundException dynamodb describe-table --table-name "$TABLE" --query "$query" --output text; then
    local key key_type key_count billing
    read -r TABLE_ARN key key_type key_count billing <"$WORK/out"
    if [[ "$key $key_type $key_count" != "FilePath HASH 1" ]]; then
      die "table $TABLE exists with another key schema; the service needs FilePath (HASH) alone"
    fi
    if [[ $billing == PAY_PER_REQUEST ]]; then
      say "exists: FilePath (HASH), on-demand"
    else
      aws_ dynamodb update-table --table-name "$TABLE" --billing-mode PAY_PER_REQUEST >/dev/null
      aws_ dynamodb wait table-exists --table-name "$TABLE"
      say "exists; billing switched from ${billing/None/PROVISIONED} to on-demand"
    fi
  else
    "$PY" "$DEPLOY_DIR/table.py" create "$TABLE" >"$WORK/table.json"
    aws_ dynamodb create-table --cli-input-json "file://$WORK/table.json" \
      --query TableDescription.TableArn --output text >"$WORK/out"
    TABLE_ARN=$(<"$WORK/out")
    aws_ dynamodb wait table-exists --table-name "$TABLE"
    say "created: FilePath (HASH), on-demand, with the search indexes"
  fi
  ensure_indexes
}

# The search indexes (managers/table.py): added one at a time, as DynamoDB requires, each
# waited on until ACTIVE, since a Query on a building index fails; existing records get the
# new key attributes once the function runs the new code (backfill_records). Then the indexes of an
# earlier version are dropped: the unsharded Modality-StudyDate would keep one hot partition
# per modality, and an index throttled on writes throttles the table's writes too. Update
# the API before deploying, since an older API still queries them.
ensure_indexes() {
  aws_ dynamodb describe-table --table-name "$TABLE" >"$WORK/describe.json"
  "$PY" "$DEPLOY_DIR/table.py" missing "$WORK/describe.json" >"$WORK/index-updates"
  "$PY" "$DEPLOY_DIR/table.py" retired "$WORK/describe.json" >"$WORK/index-retired"
  if [[ ! -s "$WORK/index-updates" && ! -s "$WORK/index-retired" ]]; then
    say "indexes present: $(index_names)"
    return
  fi
  local name update
  while read -r name update; do
    printf '%s' "$update" >"$WORK/update.json"
    aws_ dynamodb update-table --cli-input-json "file://$WORK/update.json" >/dev/null
    wait_index_active "$name"
    say "index $name added"
  done <"$WORK/index-updates"
  if [[ -s "$WORK/index-updates" ]]; then
    BACKFILL=1
  fi
  while read -r name; do
    aws_ dynamodb update-table --table-name "$TABLE" \
      --global-secondary-index-updates "[{\"Delete\":{\"IndexName\":\"$name\"}}]" >/dev/null
    wait_index_gone "$name"
    say "index $name dropped (no longer used)"
  done <"$WORK/index-retired"
}

# Records of an earlier version lack the new indexes' key attributes (deploy/backfill.py).
# Run after the function is updated, so the old code writes no more records without them.
BACKFILL=0
backfill_records() {
  if [[ $BACKFILL == 1 ]]; then
    local counts
    printf '\nTable %s: the records of the earlier version\n' "$TABLE"
    counts=$("$PY" "$DEPLOY_DIR/backfill.py" "$TABLE") ||
      die "the backfill failed; it needs boto3 (make test installs it), re-run: $PY deploy/backfill.py $TABLE"
    say "given the new index attributes: $counts"
  fi
}

index_names() {
  aws_ dynamodb describe-table --table-name "$TABLE" \
    --query 'join(`, `, Table.GlobalSecondaryIndexes[].IndexName)' --output text
}

wait_index_active() {
  local status attempt
  for attempt in $(seq 1 120); do
    status=$(aws_ dynamodb describe-table --table-name "$TABLE" \
      --query "Table.GlobalSecondaryIndexes[?IndexName=='$1'].IndexStatus | [0]" --output text)
    [[ $status == ACTIVE ]] && return
    [[ $attempt == 1 ]] && say "index $1 is building (DynamoDB backfills existing records)"
    sleep 5
  done
  die "index $1 is still $status after 10 minutes"
}

wait_index_gone() {
  local status attempt
  for attempt in $(seq 1 120); do
    status=$(aws_ dynamodb describe-table --table-name "$TABLE" \
      --query "Table.GlobalSecondaryIndexes[?IndexName=='$1'].IndexStatus | [0]" --output text)
    [[ $status == None ]] && return
    sleep 5
  done
  die "index $1 is still $status after 10 minutes"
}

ensure_dlq() {
  step "SQS dead-letter queue $DLQ_NAME"
  local retention
  if probe 'NonExistentQueue|QueueDoesNotExist' sqs get-queue-url --queue-name "$DLQ_NAME" --query QueueUrl --output text; then
    DLQ_URL=$(<"$WORK/out")
    aws_ sqs get-queue-attributes --queue-url "$DLQ_URL" \
      --attribute-names QueueArn MessageRetentionPeriod --query 'Attributes.[QueueArn, MessageRetentionPeriod]' \
      --output text >"$WORK/out"
    read -r DLQ_ARN retention <"$WORK/out"
    if [[ $retention == "$DLQ_RETENTION" ]]; then
      say "exists"
    else
      aws_ sqs set-queue-attributes --queue-url "$DLQ_URL" --attributes "MessageRetentionPeriod=$DLQ_RETENTION"
      say "exists; retention set to 14 days (was $retention s)"
    fi
  else
    aws_ sqs create-queue --queue-name "$DLQ_NAME" \
      --attributes "MessageRetentionPeriod=$DLQ_RETENTION,SqsManagedSseEnabled=true" \
      --query QueueUrl --output text >"$WORK/out"
    DLQ_URL=$(<"$WORK/out")
    aws_ sqs get-queue-attributes --queue-url "$DLQ_URL" --attribute-names QueueArn \
      --query Attributes.QueueArn --output text >"$WORK/out"
    DLQ_ARN=$(<"$WORK/out")
    say "created: keeps failed events 14 days, encrypted at rest"
  fi
}

ensure_role() {
  step "IAM role $ROLE and its inline policy $POLICY_NAME"
  local trust="$DEPLOY_DIR/lambda-trust-policy.json"
  if probe NoSuchEntity iam get-role --role-name "$ROLE"; then
    ROLE_ARN=$(field Role.Arn)
    field Role.AssumeRolePolicyDocument >"$WORK/trust-current.json"
    if "$PY" "$DEPLOY_DIR/documents.py" same "$WORK/trust-current.json" "$trust"; then
      say "role exists; trust policy unchanged (lambda.amazonaws.com)"
    else
      aws_ iam update-assume-role-policy --role-name "$ROLE" --policy-document "file://$trust"
      say "role exists; trust policy reset to lambda.amazonaws.com only"
    fi
    aws_ iam list-attached-role-policies --role-name "$ROLE" \
      --query 'AttachedPolicies[].PolicyArn' --output text >"$WORK/out"
    if [[ -s "$WORK/out" && $(<"$WORK/out") != None ]]; then
      say "warning: managed policies attached by someone else, left alone: $(<"$WORK/out")"
    fi
  else
    aws_ iam create-role --role-name "$ROLE" --assume-role-policy-document "file://$trust" \
      --description "dicom-meta ingest Lambda ($FUNCTION)" >"$WORK/out"
    ROLE_ARN=$(field Role.Arn)
    say "role created; trusted by lambda.amazonaws.com only"
  fi
  "$PY" "$DEPLOY_DIR/documents.py" render "$DEPLOY_DIR/lambda-policy.json" \
    "Partition=$PARTITION" "Region=$REGION" "Account=$ACCOUNT" "BucketName=$BUCKET" \
    "JsonPrefix=$JSON_PREFIX" "TableArn=$TABLE_ARN" "QueueArn=$DLQ_ARN" "FunctionName=$FUNCTION" \
    >"$WORK/policy.json"
  if probe NoSuchEntity iam get-role-policy --role-name "$ROLE" --policy-name "$POLICY_NAME" --query PolicyDocument \
    && "$PY" "$DEPLOY_DIR/documents.py" same "$WORK/out" "$WORK/policy.json"; then
    say "inline policy unchanged"
  else
    aws_ iam put-role-policy --role-name "$ROLE" --policy-name "$POLICY_NAME" \
      --policy-document "file://$WORK/policy.json"
    say "inline policy written"
  fi
  say "grants: s3:GetObject on $BUCKET/$JSON_PREFIX*, dynamodb:PutItem and UpdateItem on the table,"
  say "        sqs:SendMessage on the DLQ, logs on /aws/lambda/$FUNCTION; nothing else"
}

build_package() {
  step "Lambda package ${ZIP_FILE#"$ROOT"/}"
  "$PY" "$DEPLOY_DIR/build_lambda_zip.py" --out "$ZIP_FILE" >"$WORK/zip.txt"
  sed '$d' "$WORK/zip.txt" | while read -r name; do say "  $name"; done
  local summary
  summary=$(tail -n 1 "$WORK/zip.txt")
  ZIP_SHA=${summary##* }
  say "${summary%, sha256 *}"
}

function_settings() {
  printf '%s %s %s %s %s' "$RUNTIME" "$HANDLER" "$ROLE_ARN" "$TIMEOUT" "$MEMORY"
}

ensure_function() {
  step "Lambda function $FUNCTION"
  local query='[Runtime, Handler, Role, Timeout, MemorySize, CodeSha256]'
  if probe ResourceNotFoundException lambda get-function-configuration --function-name "$FUNCTION" --query "$query" --output text; then
    local runtime handler role timeout memory old_sha
    read -r runtime handler role timeout memory old_sha <"$WORK/out"
    # An update still in progress (another deploy, the console) would refuse ours.
    aws_ lambda wait function-updated --function-name "$FUNCTION"
    if [[ "$runtime $handler $role $timeout $memory" == "$(function_settings)" ]]; then
      say "settings unchanged: $RUNTIME, $HANDLER, ${TIMEOUT} s, ${MEMORY} MB"
    else
      with_iam_retry lambda update-function-configuration --function-name "$FUNCTION" \
        --runtime "$RUNTIME" --handler "$HANDLER" --role "$ROLE_ARN" --timeout "$TIMEOUT" --memory-size "$MEMORY"
      aws_ lambda wait function-updated --function-name "$FUNCTION"
      say "settings updated to $RUNTIME, $HANDLER, ${TIMEOUT} s, ${MEMORY} MB"
      say "  (were $runtime, $handler, ${timeout} s, ${memory} MB, role $role)"
    fi
    aws_ lambda update-function-code --function-name "$FUNCTION" --zip-file "fileb://$ZIP_FILE" >/dev/null
    aws_ lambda wait function-updated --function-name "$FUNCTION"
    if [[ $old_sha == "$ZIP_SHA" ]]; then
      say "code uploaded and active (identical to what was deployed: sha256 $ZIP_SHA)"
      FUNCTION_STATE="existed; same code uploaded again"
    else
      say "code uploaded and active: sha256 $ZIP_SHA (was $old_sha)"
      FUNCTION_STATE="existed; new code"
    fi
  else
    with_iam_retry lambda create-function --function-name "$FUNCTION" \
      --runtime "$RUNTIME" --handler "$HANDLER" --role "$ROLE_ARN" --timeout "$TIMEOUT" --memory-size "$MEMORY" \
      --description "dicom-meta: stores each json/*.json metadata upload in DynamoDB" \
      --zip-file "fileb://$ZIP_FILE"
    aws_ lambda wait function-active --function-name "$FUNCTION"
    say "created and active: $RUNTIME, $HANDLER, ${TIMEOUT} s, ${MEMORY} MB, sha256 $ZIP_SHA"
    FUNCTION_STATE="created"
  fi
  FUNCTION_ARN="arn:$PARTITION:lambda:$REGION:$ACCOUNT:function:$FUNCTION"
}

ensure_invoke_config() {
  step "Asynchronous invocation: retries and on-failure destination"
  local query='[MaximumRetryAttempts, MaximumEventAgeInSeconds, DestinationConfig.OnFailure.Destination, DestinationConfig.OnSuccess.Destination]'
  local wanted="$MAX_RETRIES $MAX_EVENT_AGE $DLQ_ARN None"
  if probe ResourceNotFoundException lambda get-function-event-invoke-config --function-name "$FUNCTION" --query "$query" --output text \
    && [[ $(tr -s '\t' ' ' <"$WORK/out") == "$wanted" ]]; then
    say "unchanged"
  else
    with_iam_retry lambda put-function-event-invoke-config --function-name "$FUNCTION" \
      --maximum-retry-attempts "$MAX_RETRIES" --maximum-event-age-in-seconds "$MAX_EVENT_AGE" \
      --destination-config "{\"OnFailure\": {\"Destination\": \"$DLQ_ARN\"}}"
    say "set"
  fi
  say "$MAX_RETRIES retries, events kept up to $((MAX_EVENT_AGE / 3600)) h, then to $DLQ_NAME"
}

ensure_permission() {
  step "Permission for S3 to invoke $FUNCTION"
  local source_arn="arn:$PARTITION:s3:::$BUCKET" state
  if ! probe ResourceNotFoundException lambda get-policy --function-name "$FUNCTION"; then
    echo '{}' >"$WORK/out"
  fi
  state=$("$PY" "$DEPLOY_DIR/documents.py" permission-state --policy "$WORK/out" \
    --sid "$PERMISSION_SID" --source-arn "$source_arn" --source-account "$ACCOUNT")
  if [[ $state == same ]]; then
    say "unchanged"
  else
    if [[ $state == different ]]; then
      aws_ lambda remove-permission --function-name "$FUNCTION" --statement-id "$PERMISSION_SID"
    fi
    aws_ lambda add-permission --function-name "$FUNCTION" --statement-id "$PERMISSION_SID" \
      --action lambda:InvokeFunction --principal s3.amazonaws.com \
      --source-arn "$source_arn" --source-account "$ACCOUNT" >/dev/null
    say "$([[ $state == different ]] && echo replaced || echo added)"
  fi
  say "statement $PERMISSION_SID: s3.amazonaws.com, only from $source_arn in account $ACCOUNT"
}

ensure_notification() {
  step "Bucket notification $NOTIFICATION_ID"
  aws_ s3api get-bucket-notification-configuration --bucket "$BUCKET" >"$WORK/notification-current.json"
  local status
  status=$("$PY" "$DEPLOY_DIR/documents.py" merge-notification --current "$WORK/notification-current.json" \
    --out "$WORK/notification.json" --id "$NOTIFICATION_ID" --function-arn "$FUNCTION_ARN" \
    --event 's3:ObjectCreated:*' --prefix "$JSON_PREFIX" --suffix "$JSON_SUFFIX" 2>"$WORK/warnings")
  while read -r warning; do say "$warning"; done <"$WORK/warnings"
  if [[ $status == unchanged ]]; then
    say "unchanged"
    cp "$WORK/notification-current.json" "$WORK/notification.json"
  else
    with_iam_retry s3api put-bucket-notification-configuration --bucket "$BUCKET" \
      --notification-configuration "file://$WORK/notification.json"
    say "$status; the bucket's other entries are kept as they were"
  fi
  NOTIFICATION_LINE=$("$PY" "$DEPLOY_DIR/documents.py" describe-notification \
    --current "$WORK/notification.json" --id "$NOTIFICATION_ID")
}

summary() {
  printf '\nDeployed. What exists now:\n'
  printf '  bucket        s3://%s (%s; %s)\n' "$BUCKET" "$REGION" "$BUCKET_STATE"
  printf '  table         %s (FilePath HASH, on-demand; indexes %s)\n' "$TABLE_ARN" "$(index_names)"
  printf '  dead letters  %s (failed events kept 14 days)\n' "$DLQ_ARN"
  printf '  role          %s (inline policy %s)\n' "$ROLE_ARN" "$POLICY_NAME"
  printf '  function      %s (%s, %s s, %s MB; %s)\n' "$FUNCTION_ARN" "$RUNTIME" "$TIMEOUT" "$MEMORY" "$FUNCTION_STATE"
  printf '  async invoke  %s retries, then %s\n' "$MAX_RETRIES" "$DLQ_ARN"
  printf '  permission    %s (s3.amazonaws.com, from arn:%s:s3:::%s in %s)\n' "$PERMISSION_SID" "$PARTITION" "$BUCKET" "$ACCOUNT"
  printf '  notification  %s\n' "$NOTIFICATION_LINE"
  printf '  package       %s (sha256 %s)\n' "${ZIP_FILE#"$ROOT"/}" "$ZIP_SHA"
}

identify "dicom-meta deploy"
ensure_bucket
ensure_table
ensure_dlq
ensure_role
build_package
ensure_function
backfill_records
ensure_invoke_config
ensure_permission
ensure_notification
summary
