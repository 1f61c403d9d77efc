#!/usr/bin/env bash
# Remove what deploy_resources.sh created: the bulk index's state machine and its role; for
# each function (ingest, indexer) its own entry of the bucket notification (every other entry
# stays), S3's permission to invoke it, the function and its async-invoke settings, its role
# and inline policy, and its dead-letter queue. Safe to re-run: what is already gone is
# reported, not an error.
#
# Kept unless --delete-data is given: the DynamoDB table (it holds the records) and a
# dead-letter queue that still holds failed events. The bucket is never removed, nor the
# results of past bulk runs under index-results/ (they are the bucket's data).
#
# Usage: bash deploy/rollback_resources.sh [--delete-data]
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DELETE_DATA=false
for arg in "$@"; do
  case $arg in
    --delete-data) DELETE_DATA=true ;;
    -h | --help) usage; exit 0 ;;
    *) die "unexpected argument: $arg (usage: bash deploy/rollback_resources.sh [--delete-data])" ;;
  esac
done

# shellcheck disable=SC2034  # read by step() in common.sh
STEPS=15
RESULTS=()

# Remember one line for the closing summary and print it under the current step.
report() {
  RESULTS+=("$(printf '    %-13s %s' "$1" "$2")")
  say "$2"
}

# remove_notification ID
remove_notification() {
  local entry_id=$1
  step "Bucket notification $entry_id"
  if ! HINT="$BUCKET_403_HINT" probe '\(404\)|Not Found|NoSuchBucket' s3api head-bucket --bucket "$BUCKET"; then
    report notification "absent (no bucket $BUCKET)"
    return
  fi
  aws_ s3api get-bucket-notification-configuration --bucket "$BUCKET" >"$WORK/notification-current.json"
  local status
  status=$("$PY" "$DEPLOY_DIR/documents.py" remove-notification --current "$WORK/notification-current.json" \
    --out "$WORK/notification.json" --id "$entry_id")
  if [[ $status == removed ]]; then
    aws_ s3api put-bucket-notification-configuration --bucket "$BUCKET" \
      --notification-configuration "file://$WORK/notification.json"
    report notification "removed; the bucket's other entries are kept as they were"
  else
    report notification "absent"
  fi
}

# remove_permission FUNCTION
remove_permission() {
  local name=$1
  step "Permission for S3 to invoke $name"
  if probe ResourceNotFoundException lambda get-policy --function-name "$name" \
    && grep -q "\"$PERMISSION_SID\"" <<<"$(field Policy)"; then
    aws_ lambda remove-permission --function-name "$name" --statement-id "$PERMISSION_SID"
    report permission "removed ($PERMISSION_SID)"
  else
    report permission "absent"
  fi
}

# remove_invoke_config FUNCTION
remove_invoke_config() {
  local name=$1
  step "Asynchronous invocation settings of $name"
  if probe ResourceNotFoundException lambda get-function-event-invoke-config --function-name "$name"; then
    aws_ lambda delete-function-event-invoke-config --function-name "$name"
    report "async invoke" "removed"
  else
    report "async invoke" "absent"
  fi
}

# remove_function FUNCTION
remove_function() {
  local name=$1
  step "Lambda function $name"
  if probe ResourceNotFoundException lambda get-function-configuration --function-name "$name"; then
    aws_ lambda delete-function --function-name "$name" >/dev/null
    report function "removed (its log group /aws/lambda/$name, made by Lambda itself, is kept)"
  else
    report function "absent"
  fi
}

# remove_role ROLE POLICY_NAME
remove_role() {
  local role=$1 policy_name=$2
  step "IAM role $role and its inline policy $policy_name"
  if ! probe NoSuchEntity iam get-role --role-name "$role"; then
    report role "absent"
    return
  fi
  if probe NoSuchEntity iam get-role-policy --role-name "$role" --policy-name "$policy_name"; then
    aws_ iam delete-role-policy --role-name "$role" --policy-name "$policy_name"
  fi
  # Deploy attaches no managed policy; one attached by someone else is theirs to detach.
  aws_ iam list-attached-role-policies --role-name "$role" --query 'AttachedPolicies[].PolicyArn' --output text >"$WORK/out"
  if [[ -s "$WORK/out" && $(<"$WORK/out") != None ]]; then
    die "role $role has managed policies deploy did not attach ($(<"$WORK/out")); detach them, then run again"
  fi
  aws_ iam delete-role --role-name "$role"
  report role "removed, with its inline policy"
}

# remove_dlq QUEUE_NAME
remove_dlq() {
  local name=$1
  step "SQS dead-letter queue $name"
  if ! probe 'NonExistentQueue|QueueDoesNotExist' sqs get-queue-url --queue-name "$name" --query QueueUrl --output text; then
    report "dead letters" "absent"
    return
  fi
  local url waiting
  url=$(<"$WORK/out")
  aws_ sqs get-queue-attributes --queue-url "$url" --attribute-names ApproximateNumberOfMessages \
    ApproximateNumberOfMessagesNotVisible ApproximateNumberOfMessagesDelayed \
    --query 'Attributes.[ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible, ApproximateNumberOfMessagesDelayed]' \
    --output text >"$WORK/out"
  waiting=$(tr -s '\t' '+' <"$WORK/out")
  waiting=$((waiting))
  if ((waiting > 0)) && [[ $DELETE_DATA == false ]]; then
    report "dead letters" "kept: it holds $waiting failed event(s), the only trace of uploads never stored (--delete-data removes it)"
    return
  fi
  aws_ sqs delete-queue --queue-url "$url"
  # SQS refuses a queue of the same name for 60 s after a delete; a deploy right away waits for it.
  if ((waiting > 0)); then
    report "dead letters" "removed, with its $waiting failed event(s) (--delete-data); SQS reuses the name after 60 s"
  else
    report "dead letters" "removed (it was empty); SQS lets a new queue take the name after 60 s"
  fi
}

remove_state_machine() {
  step "Step Functions state machine $STATE_MACHINE"
  local arn="arn:$PARTITION:states:$REGION:$ACCOUNT:stateMachine:$STATE_MACHINE"
  if ! probe StateMachineDoesNotExist stepfunctions describe-state-machine --state-machine-arn "$arn" --query status --output text; then
    report "fan-out" "absent"
    return
  fi
  # Deleting stops a running bulk run too (Step Functions stops its executions); what it had
  # indexed stays indexed, and a later run skips it.
  aws_ stepfunctions delete-state-machine --state-machine-arn "$arn"
  report "fan-out" "removed (running bulk runs stop; their results under s3://$BUCKET/$RESULTS_PREFIX are kept)"
}

remove_table() {
  step "DynamoDB table $TABLE"
  if ! probe ResourceNotFoundException dynamodb describe-table --table-name "$TABLE" --query Table.ItemCount --output text; then
    report table "absent"
    return
  fi
  if [[ $DELETE_DATA == false ]]; then
    report table "kept: it holds the records (DynamoDB's last count: $(<"$WORK/out"); --delete-data removes it)"
    return
  fi
  aws_ dynamodb delete-table --table-name "$TABLE" >/dev/null
  aws_ dynamodb wait table-not-exists --table-name "$TABLE"
  report table "removed, with its records (--delete-data)"
}

summary() {
  printf '\nRolled back. Where things stand:\n'
  printf '%s\n' "${RESULTS[@]}"
  printf '    %-13s %s\n' bucket "s3://$BUCKET is never removed by rollback"
}

if [[ $DELETE_DATA == true ]]; then
  identify "dicom-meta rollback, with --delete-data"
else
  identify "dicom-meta rollback"
fi
RESULTS+=("  the bulk index's fan-out")
remove_state_machine
remove_role "$FAN_OUT_ROLE" "$FAN_OUT_POLICY_NAME"
RESULTS+=("  the indexer ($INDEXER_FUNCTION)")
remove_notification "$INDEXER_NOTIFICATION_ID"
remove_permission "$INDEXER_FUNCTION"
remove_invoke_config "$INDEXER_FUNCTION"
remove_function "$INDEXER_FUNCTION"
remove_role "$INDEXER_ROLE" "$INDEXER_POLICY_NAME"
remove_dlq "$INDEXER_DLQ_NAME"
RESULTS+=("  the ingest function ($FUNCTION)")
remove_notification "$NOTIFICATION_ID"
remove_permission "$FUNCTION"
remove_invoke_config "$FUNCTION"
remove_function "$FUNCTION"
remove_role "$ROLE" "$POLICY_NAME"
remove_dlq "$DLQ_NAME"
RESULTS+=("  data")
remove_table
summary
