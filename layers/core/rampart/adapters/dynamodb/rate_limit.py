"""Rate-limit counters in DynamoDB (the ``rate_limits`` table: partition key ``pk``, TTL
attribute ``expires_at``). A window opens at its first hit and lasts ``window_seconds``; hits
are counted with an atomic ``UpdateItem ADD``. TTL deletion lags (up to days), so a window whose
``expires_at`` has passed is treated as absent and is reopened by a conditional write."""

from __future__ import annotations

import math
from typing import Any

from rampart.auth.models import Window

_RETRIES = 4


def _n(value: float) -> dict[str, str]:  # not money: seconds
    return {"N": f"{value:.3f}" if not float(value).is_integer() else str(int(value))}  # not money: seconds


class DynamoDBRateLimitCounter:
    def __init__(self, table_name: str, *, client: Any = None) -> None:
        self.table_name = table_name
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("dynamodb")
        return self._client

    def current(self, key: str, now: float) -> Window | None:  # not money: seconds
        item = self.client.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": key}},
            ConsistentRead=True,
            ProjectionExpression="hits, expires_at",
        ).get("Item")
        if not item or "expires_at" not in item:
            return None
        resets_at = float(item["expires_at"]["N"])  # not money: seconds
        if resets_at <= now:
            return None
        return Window(count=int(item.get("hits", {"N": "0"})["N"]), resets_at=resets_at)

    def hit(self, key: str, now: float, window_seconds: int) -> Window:  # not money: seconds
        from botocore.exceptions import ClientError

        for _ in range(_RETRIES):
            try:  # the live window: count one more
                attributes = self.client.update_item(
                    TableName=self.table_name,
                    Key={"pk": {"S": key}},
                    UpdateExpression="ADD hits :one",
                    ConditionExpression="attribute_exists(pk) AND expires_at > :now",
                    ExpressionAttributeValues={":one": {"N": "1"}, ":now": _n(now)},
                    ReturnValues="ALL_NEW",
                )["Attributes"]
                resets = float(attributes["expires_at"]["N"])  # not money: epoch seconds
                return Window(count=int(attributes["hits"]["N"]), resets_at=resets)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
            resets_at = math.floor(now + window_seconds)  # whole seconds for the TTL; never longer
            try:  # none, or a dead one the TTL has not removed yet: open a window
                self.client.update_item(
                    TableName=self.table_name,
                    Key={"pk": {"S": key}},
                    UpdateExpression="SET hits = :one, expires_at = :expires",
                    ConditionExpression="attribute_not_exists(pk) OR expires_at <= :now",
                    ExpressionAttributeValues={":one": {"N": "1"}, ":expires": _n(resets_at), ":now": _n(now)},
                )
                return Window(count=1, resets_at=float(resets_at))  # not money: seconds
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
            # Another request opened the window between our two writes: count in it.
        raise RuntimeError(f"rate-limit counter {key!r} kept changing under us")

    def clear(self, key: str) -> None:
        self.client.delete_item(TableName=self.table_name, Key={"pk": {"S": key}})
