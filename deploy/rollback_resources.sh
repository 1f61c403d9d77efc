#!/usr/bin/env bash
# Remove what deploy_resources.sh created: its own entry of the bucket notification (every
# other entry stays), S3's permission to invoke the function, the function and its
# async-invoke settings, the role and its inline policy, and the dead-letter queue. Safe to
# re-run: what is already gone is reported, not an error.
#
# Kept unless --delete-data is given: the DynamoDB table (it holds the records) and a
# dead-letter queue that still holds failed events. The bucket is never removed.
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
STEPS=7
RESULTS=()

# Remember one line for the closing summary and print it under the current step.
report() {
  RESULTS+=("$(printf '  %-13s %s' "$1" "$2")")
  say "$2"
}

remove_notification() {
  step "Bucket notification $NOTIFICATION_ID"
  if ! HINT="$BUCKET_403_HINT" probe '\(404\)|Not Found|NoSuchBucket' s3api head-bucket --bucket "$BUCKET"; then
    report notification "absent (no bucket $BUCKET)"
    return
  fi
  aws_ s3api get-bucket-notification-configuration --bucket "$BUCKET" >"$WORK/notification-current.json"
  local status
  status=$("$PY" "$DEPLOY_DIR/documents.py" remove-notification --current "$WORK/notification-current.json" \
    --out "$WORK/notification.json" --id "$NOTIFICATION_ID")
  if [[ $status == removed ]]; then
    aws_ s3api put-bucket-notification-configuration --bucket "$BUCKET" \
      --notification-configuration "file://$WORK/notification.json"
    report notification "removed; the bucket's other entries are kept as they were"
  else
    report notification "absent"
  fi
}

remove_permission() {
  step "Permission for S3 to invoke $FUNCTION"
  if probe ResourceNotFoundException lambda get-policy --function-name "$FUNCTION" \
    && grep -q "\"$PERMISSION_SID\"" <<<"$(field Policy)"; then
    aws_ lambda remove-permission --function-name "$FUNCTION" --statement-id "$PERMISSION_SID"
    report permission "removed ($PERMISSION_SID)"
  else
    report permission "absent"
  fi
}

remove_invoke_config() {
  step "Asynchronous invocation settings of $FUNCTION"
  if probe ResourceNotFoundException lambda get-function-event-invoke-config --function-name "$FUNCTION"; then
    aws_ lambda delete-function-event-invoke-config --function-name "$FUNCTION"
    report "async invoke" "removed"
  else
    report "async invoke" "absent"
  fi
}

remove_function() {
  step "Lambda function $FUNCTION"
  if probe ResourceNotFoundException lambda get-function-configuration --function-name "$FUNCTION"; then
    aws_ lambda delete-function --function-name "$FUNCTION" >/dev/null
    report function "removed (its log group /aws/lambda/$FUNCTION, made by Lambda itself, is kept)"
  else
    report function "absent"
  fi
}

remove_role() {
  step "IAM role $ROLE and its inline policy $POLICY_NAME"
  if ! probe NoSuchEntity iam get-role --role-name "$ROLE"; then
    report role "absent"
    return
  fi
  if probe NoSuchEntity iam get-role-policy --role-name "$ROLE" --policy-name "$POLICY_NAME"; then
    aws_ iam delete-role-policy --role-name "$ROLE" --policy-name "$POLICY_NAME"
  fi
  # Deploy attaches no managed policy; one attached by someone else is theirs to detach.
  aws_ iam list-attached-role-policies --role-name "$ROLE" --query 'AttachedPolicies[].PolicyArn' --output text >"$WORK/out"
  if [[ -s "$WORK/out" && $(<"$WORK/out") != None ]]; then
    die "role $ROLE has managed policies deploy did not attach ($(<"$WORK/out")); detach them, then run again"
  fi
  aws_ iam delete-role --role-name "$ROLE"
  report role "removed, with its inline policy"
}

remove_dlq() {
  step "SQS dead-letter queue $DLQ_NAME"
  if ! probe 'NonExistentQueue|QueueDoesNotExist' sqs get-queue-url --queue-name "$DLQ_NAME" --query QueueUrl --output text; then
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
  printf '  %-13s %s\n' bucket "s3://$BUCKET is never removed by rollback"
}

if [[ $DELETE_DATA == true ]]; then
  identify "dicom-meta rollback, with --delete-data"
else
  identify "dicom-meta rollback"
fi
remove_notification
remove_permission
remove_invoke_config
remove_function
remove_role
remove_dlq
remove_table
summary
