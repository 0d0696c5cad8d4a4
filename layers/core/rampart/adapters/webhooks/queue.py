"""The provider-events queue (SQS): where recorded events wait to be applied."""

from __future__ import annotations

import json
from typing import Any

from rampart.webhooks.errors import QueueUnavailable


class SqsEventQueue:
    def __init__(self, queue_url: str, *, client: Any = None) -> None:
        self.queue_url = queue_url
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            # A webhook answers within its provider's timeout: fail fast, the schedule retries.
            config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"})
            self._client = boto3.client("sqs", config=config)
        return self._client

    def send(self, message: dict[str, Any]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(message, separators=(",", ":")))
        except (BotoCoreError, ClientError) as exc:
            raise QueueUnavailable(f"the event queue refused the message: {type(exc).__name__}") from exc
