#!/usr/bin/env bash
# Create, or converge, the AWS side of dicom-meta: the DynamoDB table; for each of the two
# functions (ingest, for json/ uploads; the indexer, for dicom/ files) a dead-letter queue, a
# role with a least-privilege policy, the function, its async-invoke settings, S3's permission
# to invoke it and its entry of the bucket notification; then the bulk index's fan-out, a Step
# Functions state machine and its role. Safe to re-run: a second run changes nothing but the
# functions' code.
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
STEPS=18
RUNTIME=python3.13
HANDLER=lambda_function.lambda_handler
INDEXER_HANDLER=indexer_function.lambda_handler
# One S3 event carries one record in practice; per record the handler makes one S3 GET of a
# small JSON document and one PutItem, each bounded near 5 s by botocore's timeouts and
# retries (managers/aws/clients.py). 30 s covers that with room for a cold start; longer would only
# hold a failing invocation longer before Lambda retries it.
TIMEOUT=30
# Memory also buys CPU: at 256 MB importing boto3 on a cold start takes about half as long as
# at 128 MB, for a function that runs a few hundred milliseconds per upload.
MEMORY=256
# The indexer reads headers only: a ranged GET or two per file (never the pixel data), a
# GetItem (the ETag skip) and a PutItem. A notification is one file; a bulk batch is 100
# (deploy/fan_out.py), some 10 s at ~0.1 s a file. 60 s leaves room for slow reads and keeps
# two tries inside an EXPRESS child execution's 5 minutes.
INDEXER_TIMEOUT=60
# Memory is not what it needs (pydicom and boto3 imported plus a header: under 100 MB), CPU
# is: Lambda gives CPU in proportion to memory, and compiling pydicom's data dictionaries on
# a cold start (the zip holds no .pyc; /var/task is read-only) and parsing headers are
# CPU-bound. 512 MB gets about a third of a vCPU, twice the ingest function's.
INDEXER_MEMORY=512
# Lambda retries a failed async invocation at most twice. The handler's write is idempotent
# (PutItem of the same key), so retrying a whole event is safe; after the retries the event
# goes to the DLQ. Events older than 6 hours (the maximum) are given up on and sent there too.
# The indexer gets the same settings and its own queue.
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
  ensure_ttl
}

# Deleted files leave a tombstone that expires (managers/store/records.py): DynamoDB's TTL on its
# attribute removes it, at no write cost.
ensure_ttl() {
  local attribute status
  attribute=$("$PY" "$DEPLOY_DIR/table.py" ttl-attribute)
  status=$(aws_ dynamodb describe-time-to-live --table-name "$TABLE" \
    --query 'TimeToLiveDescription.[TimeToLiveStatus, AttributeName]' --output text)
  if [[ $status == "ENABLED $attribute" || $status == "ENABLING $attribute" ]]; then
    say "TTL on $attribute: enabled"
    return
  fi
  aws_ dynamodb update-time-to-live --table-name "$TABLE" \
    --time-to-live-specification "Enabled=true,AttributeName=$attribute" >/dev/null
  say "TTL on $attribute: enabled now (tombstones of deleted files expire)"
}

# The search indexes (managers/store/table.py): added one at a time, as DynamoDB requires, each
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

# ensure_dlq NAME: sets DLQ_URL and DLQ_ARN.
ensure_dlq() {
  local name=$1 retention
  step "SQS dead-letter queue $name"
  if probe 'NonExistentQueue|QueueDoesNotExist' sqs get-queue-url --queue-name "$name" --query QueueUrl --output text; then
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
    aws_ sqs create-queue --queue-name "$name" \
      --attributes "MessageRetentionPeriod=$DLQ_RETENTION,SqsManagedSseEnabled=true" \
      --query QueueUrl --output text >"$WORK/out"
    DLQ_URL=$(<"$WORK/out")
    aws_ sqs get-queue-attributes --queue-url "$DLQ_URL" --attribute-names QueueArn \
      --query Attributes.QueueArn --output text >"$WORK/out"
    DLQ_ARN=$(<"$WORK/out")
    say "created: keeps failed events 14 days, encrypted at rest"
  fi
}

# ensure_role ROLE POLICY_NAME TRUST_FILE TRUSTED DESCRIPTION POLICY_FILE: the role, trusted as
# TRUST_FILE says (TRUSTED names who, for the messages), with POLICY_FILE as its one inline
# policy. Sets ROLE_ARN.
ensure_role() {
  local role=$1 policy_name=$2 trust=$3 trusted=$4 description=$5 policy=$6
  step "IAM role $role and its inline policy $policy_name"
  if probe NoSuchEntity iam get-role --role-name "$role"; then
    ROLE_ARN=$(field Role.Arn)
    field Role.AssumeRolePolicyDocument >"$WORK/trust-current.json"
    if "$PY" "$DEPLOY_DIR/documents.py" same "$WORK/trust-current.json" "$trust"; then
      say "role exists; trust policy unchanged ($trusted)"
    else
      aws_ iam update-assume-role-policy --role-name "$role" --policy-document "file://$trust"
      say "role exists; trust policy reset to $trusted only"
    fi
    aws_ iam list-attached-role-policies --role-name "$role" \
      --query 'AttachedPolicies[].PolicyArn' --output text >"$WORK/out"
    if [[ -s "$WORK/out" && $(<"$WORK/out") != None ]]; then
      say "warning: managed policies attached by someone else, left alone: $(<"$WORK/out")"
    fi
  else
    aws_ iam create-role --role-name "$role" --assume-role-policy-document "file://$trust" \
      --description "$description" >"$WORK/out"
    ROLE_ARN=$(field Role.Arn)
    say "role created; trusted by $trusted only"
  fi
  if probe NoSuchEntity iam get-role-policy --role-name "$role" --policy-name "$policy_name" --query PolicyDocument \
    && "$PY" "$DEPLOY_DIR/documents.py" same "$WORK/out" "$policy"; then
    say "inline policy unchanged"
  else
    aws_ iam put-role-policy --role-name "$role" --policy-name "$policy_name" --policy-document "file://$policy"
    say "inline policy written"
  fi
}

# render TEMPLATE OUT Name=value...: fill a policy template from deploy/ into $WORK/OUT.
render() {
  local template=$1 out=$2
  shift 2
  "$PY" "$DEPLOY_DIR/documents.py" render "$DEPLOY_DIR/$template" "Partition=$PARTITION" "Region=$REGION" \
    "Account=$ACCOUNT" "BucketName=$BUCKET" "$@" >"$WORK/$out"
}

ensure_ingest_role() {
  render lambda-policy.json ingest-policy.json "JsonPrefix=$JSON_PREFIX" "TableArn=$TABLE_ARN" \
    "QueueArn=$INGEST_DLQ_ARN" "FunctionName=$FUNCTION"
  ensure_role "$ROLE" "$POLICY_NAME" "$DEPLOY_DIR/lambda-trust-policy.json" lambda.amazonaws.com \
    "dicom-meta ingest Lambda ($FUNCTION)" "$WORK/ingest-policy.json"
  say "grants: s3:GetObject on $BUCKET/$JSON_PREFIX*, dynamodb:PutItem and UpdateItem on the table,"
  say "        sqs:SendMessage on the DLQ, logs on /aws/lambda/$FUNCTION; nothing else"
}

ensure_indexer_role() {
  render indexer-policy.json indexer-policy.json "DicomPrefix=$DICOM_PREFIX" "TableArn=$TABLE_ARN" \
    "QueueArn=$INDEXER_DLQ_ARN" "FunctionName=$INDEXER_FUNCTION"
  ensure_role "$INDEXER_ROLE" "$INDEXER_POLICY_NAME" "$DEPLOY_DIR/lambda-trust-policy.json" lambda.amazonaws.com \
    "dicom-meta indexer Lambda ($INDEXER_FUNCTION)" "$WORK/indexer-policy.json"
  say "grants: s3:GetObject on $BUCKET/$DICOM_PREFIX*; on the table GetItem, BatchGetItem, PutItem,"
  say "        UpdateItem, DeleteItem, BatchWriteItem (reads of its own records: the ETag skip, and"
  say "        keeping what an upload asserted); sqs:SendMessage on its DLQ, logs on"
  say "        /aws/lambda/$INDEXER_FUNCTION; nothing else"
}

# build_package FUNCTION ZIP: the zip of the ingest or indexer function. Sets ZIP_SHA.
build_package() {
  local kind=$1 zip=$2
  step "Lambda package ${zip#"$ROOT"/}"
  "$PY" "$DEPLOY_DIR/build_lambda_zip.py" --function "$kind" --out "$zip" >"$WORK/zip.txt"
  sed '$d' "$WORK/zip.txt" | while read -r name; do say "  $name"; done
  local summary
  summary=$(tail -n 1 "$WORK/zip.txt")
  ZIP_SHA=${summary##* }
  say "${summary%, sha256 *}"
}

# ensure_function NAME HANDLER TIMEOUT MEMORY ROLE_ARN ZIP ZIP_SHA DESCRIPTION: the function
# with these settings and this code. Sets FUNCTION_ARN and FUNCTION_STATE.
ensure_function() {
  local name=$1 handler=$2 timeout=$3 memory=$4 role_arn=$5 zip=$6 zip_sha=$7 description=$8
  local wanted="$RUNTIME $handler $role_arn $timeout $memory"
  step "Lambda function $name"
  local query='[Runtime, Handler, Role, Timeout, MemorySize, CodeSha256]'
  if probe ResourceNotFoundException lambda get-function-configuration --function-name "$name" --query "$query" --output text; then
    local was_runtime was_handler was_role was_timeout was_memory old_sha
    read -r was_runtime was_handler was_role was_timeout was_memory old_sha <"$WORK/out"
    # An update still in progress (another deploy, the console) would refuse ours.
    aws_ lambda wait function-updated --function-name "$name"
    if [[ "$was_runtime $was_handler $was_role $was_timeout $was_memory" == "$wanted" ]]; then
      say "settings unchanged: $RUNTIME, $handler, ${timeout} s, ${memory} MB"
    else
      with_iam_retry lambda update-function-configuration --function-name "$name" \
        --runtime "$RUNTIME" --handler "$handler" --role "$role_arn" --timeout "$timeout" --memory-size "$memory"
      aws_ lambda wait function-updated --function-name "$name"
      say "settings updated to $RUNTIME, $handler, ${timeout} s, ${memory} MB"
      say "  (were $was_runtime, $was_handler, ${was_timeout} s, ${was_memory} MB, role $was_role)"
    fi
    aws_ lambda update-function-code --function-name "$name" --zip-file "fileb://$zip" >/dev/null
    aws_ lambda wait function-updated --function-name "$name"
    if [[ $old_sha == "$zip_sha" ]]; then
      say "code uploaded and active (identical to what was deployed: sha256 $zip_sha)"
      FUNCTION_STATE="existed; same code uploaded again"
    else
      say "code uploaded and active: sha256 $zip_sha (was $old_sha)"
      FUNCTION_STATE="existed; new code"
    fi
  else
    with_iam_retry lambda create-function --function-name "$name" \
      --runtime "$RUNTIME" --handler "$handler" --role "$role_arn" --timeout "$timeout" --memory-size "$memory" \
      --description "$description" --zip-file "fileb://$zip"
    aws_ lambda wait function-active --function-name "$name"
    say "created and active: $RUNTIME, $handler, ${timeout} s, ${memory} MB, sha256 $zip_sha"
    FUNCTION_STATE="created"
  fi
  FUNCTION_ARN="arn:$PARTITION:lambda:$REGION:$ACCOUNT:function:$name"
}

# ensure_invoke_config FUNCTION DLQ_ARN DLQ_NAME
ensure_invoke_config() {
  local name=$1 dlq_arn=$2 dlq_name=$3
  step "Asynchronous invocation of $name: retries and on-failure destination"
  local query='[MaximumRetryAttempts, MaximumEventAgeInSeconds, DestinationConfig.OnFailure.Destination, DestinationConfig.OnSuccess.Destination]'
  local wanted="$MAX_RETRIES $MAX_EVENT_AGE $dlq_arn None"
  if probe ResourceNotFoundException lambda get-function-event-invoke-config --function-name "$name" --query "$query" --output text \
    && [[ $(tr -s '\t' ' ' <"$WORK/out") == "$wanted" ]]; then
    say "unchanged"
  else
    with_iam_retry lambda put-function-event-invoke-config --function-name "$name" \
      --maximum-retry-attempts "$MAX_RETRIES" --maximum-event-age-in-seconds "$MAX_EVENT_AGE" \
      --destination-config "{\"OnFailure\": {\"Destination\": \"$dlq_arn\"}}"
    say "set"
  fi
  say "$MAX_RETRIES retries, events kept up to $((MAX_EVENT_AGE / 3600)) h, then to $dlq_name"
}

# ensure_permission FUNCTION: S3 may invoke it, from our bucket in our account only.
ensure_permission() {
  local name=$1
  step "Permission for S3 to invoke $name"
  local source_arn="arn:$PARTITION:s3:::$BUCKET" state
  if ! probe ResourceNotFoundException lambda get-policy --function-name "$name"; then
    echo '{}' >"$WORK/out"
  fi
  state=$("$PY" "$DEPLOY_DIR/documents.py" permission-state --policy "$WORK/out" \
    --sid "$PERMISSION_SID" --source-arn "$source_arn" --source-account "$ACCOUNT")
  if [[ $state == same ]]; then
    say "unchanged"
  else
    if [[ $state == different ]]; then
      aws_ lambda remove-permission --function-name "$name" --statement-id "$PERMISSION_SID"
    fi
    aws_ lambda add-permission --function-name "$name" --statement-id "$PERMISSION_SID" \
      --action lambda:InvokeFunction --principal s3.amazonaws.com \
      --source-arn "$source_arn" --source-account "$ACCOUNT" >/dev/null
    say "$([[ $state == different ]] && echo replaced || echo added)"
  fi
  say "statement $PERMISSION_SID: s3.amazonaws.com, only from $source_arn in account $ACCOUNT"
}

# ensure_notification ID FUNCTION_ARN PREFIX SUFFIX EVENT...: our entry of the bucket's
# notification, merged with every other entry. Sets NOTIFICATION_LINE.
ensure_notification() {
  local entry_id=$1 function_arn=$2 prefix=$3 suffix=$4 event
  shift 4
  local events=()
  for event in "$@"; do events+=(--event "$event"); done
  step "Bucket notification $entry_id"
  aws_ s3api get-bucket-notification-configuration --bucket "$BUCKET" >"$WORK/notification-current.json"
  local status
  status=$("$PY" "$DEPLOY_DIR/documents.py" merge-notification --current "$WORK/notification-current.json" \
    --out "$WORK/notification.json" --id "$entry_id" --function-arn "$function_arn" \
    "${events[@]}" --prefix "$prefix" --suffix "$suffix" 2>"$WORK/warnings")
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
    --current "$WORK/notification.json" --id "$entry_id")
}

ensure_fan_out_role() {
  local trust="$WORK/fan-out-trust.json"
  "$PY" "$DEPLOY_DIR/documents.py" render "$DEPLOY_DIR/fan-out-trust-policy.json" "Partition=$PARTITION" \
    "Region=$REGION" "Account=$ACCOUNT" "StateMachineName=$STATE_MACHINE" >"$trust"
  render fan-out-policy.json fan-out-policy.json "IndexerArn=$INDEXER_ARN" "DicomPrefix=$DICOM_PREFIX" \
    "ResultsPrefix=$RESULTS_PREFIX" "StateMachineName=$STATE_MACHINE"
  ensure_role "$FAN_OUT_ROLE" "$FAN_OUT_POLICY_NAME" "$trust" "states.amazonaws.com (for $STATE_MACHINE)" \
    "dicom-meta bulk index fan-out ($STATE_MACHINE)" "$WORK/fan-out-policy.json"
  say "grants: lambda:InvokeFunction on $INDEXER_FUNCTION, s3:ListBucket of $BUCKET under $DICOM_PREFIX,"
  say "        s3:PutObject (and multipart upkeep) under $BUCKET/$RESULTS_PREFIX, states:StartExecution"
  say "        of its own children and DescribeExecution/StopExecution of them; nothing else"
  FAN_OUT_ROLE_ARN=$ROLE_ARN
}

ensure_state_machine() {
  step "Step Functions state machine $STATE_MACHINE (the bulk index's fan-out)"
  "$PY" "$DEPLOY_DIR/fan_out.py" definition --partition "$PARTITION" --function-arn "$INDEXER_ARN" \
    --bucket "$BUCKET" --results-prefix "$RESULTS_PREFIX" >"$WORK/definition.json"
  STATE_MACHINE_ARN="arn:$PARTITION:states:$REGION:$ACCOUNT:stateMachine:$STATE_MACHINE"
  if probe StateMachineDoesNotExist stepfunctions describe-state-machine --state-machine-arn "$STATE_MACHINE_ARN"; then
    field definition >"$WORK/definition-current.json"
    if [[ $(field roleArn) == "$FAN_OUT_ROLE_ARN" ]] \
      && "$PY" "$DEPLOY_DIR/documents.py" same "$WORK/definition-current.json" "$WORK/definition.json"; then
      say "unchanged"
    else
      with_iam_retry stepfunctions update-state-machine --state-machine-arn "$STATE_MACHINE_ARN" \
        --definition "file://$WORK/definition.json" --role-arn "$FAN_OUT_ROLE_ARN"
      say "definition and role updated"
    fi
  else
    with_iam_retry stepfunctions create-state-machine --name "$STATE_MACHINE" --type STANDARD \
      --definition "file://$WORK/definition.json" --role-arn "$FAN_OUT_ROLE_ARN"
    say "created"
  fi
  say "a Distributed Map over s3:ListObjectsV2 of the input prefix: batches of 100 keys to"
  say "$INDEXER_FUNCTION in EXPRESS children, 40 at a time; results under s3://$BUCKET/$RESULTS_PREFIX"
}

summary() {
  printf '\nDeployed. What exists now:\n'
  printf '  bucket        s3://%s (%s; %s)\n' "$BUCKET" "$REGION" "$BUCKET_STATE"
  printf '  table         %s (FilePath HASH, on-demand; indexes %s)\n' "$TABLE_ARN" "$(index_names)"
  printf '  ingest        %s (%s, %s s, %s MB; %s)\n' "$INGEST_ARN" "$RUNTIME" "$TIMEOUT" "$MEMORY" "$INGEST_STATE"
  printf '    role        %s (inline policy %s)\n' "$INGEST_ROLE_ARN" "$POLICY_NAME"
  printf '    on failure  %s retries, then %s (kept 14 days)\n' "$MAX_RETRIES" "$INGEST_DLQ_ARN"
  printf '    trigger     %s\n' "$INGEST_NOTIFICATION"
  printf '    package     %s (sha256 %s)\n' "${ZIP_FILE#"$ROOT"/}" "$INGEST_SHA"
  printf '  indexer       %s (%s, %s s, %s MB; %s)\n' "$INDEXER_ARN" "$RUNTIME" "$INDEXER_TIMEOUT" "$INDEXER_MEMORY" "$INDEXER_STATE"
  printf '    role        %s (inline policy %s)\n' "$INDEXER_ROLE_ARN" "$INDEXER_POLICY_NAME"
  printf '    on failure  %s retries, then %s (kept 14 days)\n' "$MAX_RETRIES" "$INDEXER_DLQ_ARN"
  printf '    trigger     %s\n' "$INDEXER_NOTIFICATION"
  printf '    package     %s (sha256 %s)\n' "${INDEXER_ZIP_FILE#"$ROOT"/}" "$INDEXER_SHA"
  printf '  permission    %s on both functions (s3.amazonaws.com, from arn:%s:s3:::%s in %s)\n' "$PERMISSION_SID" "$PARTITION" "$BUCKET" "$ACCOUNT"
  printf '  fan-out       %s (role %s)\n' "$STATE_MACHINE_ARN" "$FAN_OUT_ROLE_ARN"
  printf '\nBulk index on AWS: make index S3_PREFIX=s3://%s/%s INDEX_ARGS=--on-aws\n' "$BUCKET" "$DICOM_PREFIX"
}

identify "dicom-meta deploy"
ensure_bucket
ensure_table

ensure_dlq "$DLQ_NAME"
INGEST_DLQ_ARN=$DLQ_ARN
ensure_ingest_role
INGEST_ROLE_ARN=$ROLE_ARN
build_package ingest "$ZIP_FILE"
INGEST_SHA=$ZIP_SHA
ensure_function "$FUNCTION" "$HANDLER" "$TIMEOUT" "$MEMORY" "$INGEST_ROLE_ARN" "$ZIP_FILE" "$INGEST_SHA" \
  "dicom-meta: stores each json/*.json metadata upload in DynamoDB"
INGEST_ARN=$FUNCTION_ARN INGEST_STATE=$FUNCTION_STATE
backfill_records
ensure_invoke_config "$FUNCTION" "$INGEST_DLQ_ARN" "$DLQ_NAME"
ensure_permission "$FUNCTION"
ensure_notification "$NOTIFICATION_ID" "$INGEST_ARN" "$JSON_PREFIX" "$JSON_SUFFIX" 's3:ObjectCreated:*'
INGEST_NOTIFICATION=$NOTIFICATION_LINE

ensure_dlq "$INDEXER_DLQ_NAME"
INDEXER_DLQ_ARN=$DLQ_ARN
ensure_indexer_role
INDEXER_ROLE_ARN=$ROLE_ARN
build_package indexer "$INDEXER_ZIP_FILE"
INDEXER_SHA=$ZIP_SHA
ensure_function "$INDEXER_FUNCTION" "$INDEXER_HANDLER" "$INDEXER_TIMEOUT" "$INDEXER_MEMORY" "$INDEXER_ROLE_ARN" \
  "$INDEXER_ZIP_FILE" "$INDEXER_SHA" "dicom-meta: indexes each DICOM file under dicom/ (header only) into DynamoDB"
INDEXER_ARN=$FUNCTION_ARN INDEXER_STATE=$FUNCTION_STATE
ensure_invoke_config "$INDEXER_FUNCTION" "$INDEXER_DLQ_ARN" "$INDEXER_DLQ_NAME"
ensure_permission "$INDEXER_FUNCTION"
ensure_notification "$INDEXER_NOTIFICATION_ID" "$INDEXER_ARN" "$DICOM_PREFIX" "" 's3:ObjectCreated:*' 's3:ObjectRemoved:*'
INDEXER_NOTIFICATION=$NOTIFICATION_LINE

ensure_fan_out_role
ensure_state_machine
summary
