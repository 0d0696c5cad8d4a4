"""AWS bits for in-process tests: the tables of the manifest created in moto, JWT key rings."""

from __future__ import annotations

import secrets
from typing import Any

IDEMPOTENCY_TABLE = "rampart-idempotency"
RATE_LIMIT_TABLE = "rampart-rate-limits"


def create_tables(client: Any) -> None:
    from infra.manifest import TABLES

    names = {"idempotency": IDEMPOTENCY_TABLE, "rate_limits": RATE_LIMIT_TABLE}
    for table in TABLES:
        if table.name not in names:
            continue
        client.create_table(
            TableName=names[table.name],
            KeySchema=[{"AttributeName": table.partition_key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": table.partition_key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        if table.ttl_attribute:
            client.update_time_to_live(
                TableName=names[table.name],
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
            )


def new_key_ring(*kids: str) -> dict[str, Any]:
    kids = kids or ("k1",)
    return {"current": kids[-1], "keys": {kid: secrets.token_hex(32) for kid in kids}}
