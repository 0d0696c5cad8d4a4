"""Starting a ramp's execution on Step Functions: the execution is named after the ramp, so a
second start finds the first (``ExecutionAlreadyExists`` → its ARN) instead of running twice.
Throttling and unavailability are :class:`rampart.core.errors.Transient`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rampart.core.errors import Transient


def execution_arn(state_machine_arn: str, name: str) -> str:
    """``arn:…:stateMachine:<machine>`` → ``arn:…:execution:<machine>:<name>``."""
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name


class _StepFunctions:
    """A Step Functions client, made on first use (boto3 imported then)."""

    def __init__(self, client: Any = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("stepfunctions")
        return self._client


class StepFunctionsWorkflows(_StepFunctions):
    def __init__(self, state_machines: Mapping[str, str], client: Any = None) -> None:
        super().__init__(client)
        self._arns = dict(state_machines)

    def start(self, state_machine: str, name: str, payload: Mapping[str, Any]) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        arn = self._arns.get(state_machine)
        if not arn:
            raise KeyError(f"no state machine ARN configured for {state_machine}")
        try:
            started = self.client.start_execution(stateMachineArn=arn, name=name, input=json.dumps(dict(payload)))
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "ExecutionAlreadyExists":
                return execution_arn(arn, name)
            if code in ("ThrottlingException", "ServiceUnavailable", "InternalServerError", "ServiceQuotaExceeded"):
                raise Transient(f"Step Functions: {code}") from None
            raise
        except BotoCoreError as error:
            raise Transient(f"Step Functions did not answer ({type(error).__name__})") from None
        return str(started["executionArn"])

    def alive(self, execution_arn: str) -> bool:
        return self.status(execution_arn) == "RUNNING"

    def status(self, execution_arn: str) -> str | None:
        """``RUNNING``, ``SUCCEEDED``, ``FAILED``, ``TIMED_OUT``, ``ABORTED``…; None: no such execution."""
        from botocore.exceptions import ClientError

        try:
            described = self.client.describe_execution(executionArn=execution_arn)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                return None
            raise
        return str(described.get("status") or "") or None

    def stop(self, execution_arn: str, cause: str) -> None:
        self.client.stop_execution(executionArn=execution_arn, error="RampWatch", cause=cause[:32768])

    def complete(self, task_token: str, output: Mapping[str, Any]) -> None:
        self.client.send_task_success(taskToken=task_token, output=json.dumps(dict(output)))


class StepFunctionsTasks(_StepFunctions):
    """Completes a waiting task by its token (SendTaskSuccess / SendTaskFailure)."""

    def success(self, token: str, output: Mapping[str, Any]) -> None:
        self.client.send_task_success(taskToken=token, output=json.dumps(dict(output)))

    def failure(self, token: str, error: str, cause: str) -> None:
        self.client.send_task_failure(taskToken=token, error=error[:256], cause=cause[:32768])
