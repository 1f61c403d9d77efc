"""StepFunctionsManager: starts the bulk index's fan-out, the state machine deploy/ creates."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from config import AWS_REGION, LAMBDA_FUNCTION_NAME
from errors import NotFound
from managers.aws.clients import error_code, make_client, upstream

# The name deploy/common.sh gives the state machine (STATE_MACHINE), from config.py's names.
STATE_MACHINE_NAME = f"{LAMBDA_FUNCTION_NAME}IndexerFanOut"


class StepFunctionsManager:
    """Finds the fan-out state machine of this account and region and starts executions of it.

    Credentials as for the other managers: explicit when given (secrets.json), otherwise
    boto3's default chain; ``endpoint_url=None`` honours ``AWS_ENDPOINT_URL``.
    """

    def __init__(
        self,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        *,
        endpoint_url: str | None = None,
    ) -> None:
        credentials = (aws_access_key_id, aws_secret_access_key, aws_session_token)
        self.client = make_client("stepfunctions", *credentials, endpoint_url=endpoint_url)
        self.sts = make_client("sts", *credentials, endpoint_url=endpoint_url)

    def state_machine_arn(self, name: str = STATE_MACHINE_NAME) -> str:
        """Return the ARN of the state machine ``name`` of the caller's account, in ``AWS_REGION``.

        Raises
        ------
        NotFound
            When no such state machine is deployed.
        UpstreamUnavailable
            When STS or Step Functions cannot be reached or throttle.
        """
        with upstream("STS"):
            identity = self.sts.get_caller_identity()
        # arn:aws:… or arn:aws-cn:… : the state machine lives in the caller's partition.
        partition = identity["Arn"].split(":")[1]
        arn = f"arn:{partition}:states:{AWS_REGION}:{identity['Account']}:stateMachine:{name}"
        try:
            with upstream("Step Functions"):
                self.client.describe_state_machine(stateMachineArn=arn)
        except ClientError as exc:
            if error_code(exc) == "StateMachineDoesNotExist":
                raise NotFound(f"no state machine {name} in {AWS_REGION}") from exc
            raise
        return arn

    def start_execution(self, state_machine_arn: str, name: str, document: dict[str, Any]) -> dict[str, str]:
        """Start an execution called ``name`` with ``document`` as its input.

        Returns
        -------
        dict
            ``executionArn`` and ``startDate`` (ISO 8601).
        """
        with upstream("Step Functions"):
            response = self.client.start_execution(
                stateMachineArn=state_machine_arn, name=name, input=json.dumps(document)
            )
        return {"executionArn": response["executionArn"], "startDate": response["startDate"].isoformat()}
