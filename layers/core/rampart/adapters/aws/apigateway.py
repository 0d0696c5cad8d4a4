"""API Gateway's partner usage plan as the auth domain's :class:`~rampart.auth.ports.ApiKeyRegistry`:
a new partner's key is imported (``CreateApiKey`` with the key's own value, enabled, named after
the partner) and put in the plan (``CreateUsagePlanKey``), so that API Gateway meters and
throttles it when the authorizer names it as ``usageIdentifierKey``.

The plan is known by its name (``RAMPART_PARTNER_USAGE_PLAN``; its id cannot reach the function,
see ``infra.manifest.UsagePlan``) and looked up once per container (``GetUsagePlans``).

Failures: whatever keeps the key out of the plan — no answer, throttling, a refusal — is
:class:`~rampart.auth.errors.ApiKeysUnavailable` (503, nothing stored; the caller tries again),
except a plan that does not exist, which is a deployment fault (:class:`ConfigurationError`). A
key created but not put in the plan stays behind, unused: its value was never shown to anyone.
There is no lookup of keys by name to resume such an import: reading ``/apikeys`` would let this
function read every partner's key value (``includeValues``), and a retry makes a new partner
with a new key anyway.

boto3 is imported on first use only."""

from __future__ import annotations

import threading
from typing import Any

from rampart.auth.errors import ApiKeysUnavailable
from rampart.core.settings import ConfigurationError

# Two tries with short timeouts: a gateway that does not answer fails one call within ~6 s, inside
# the admin function's 10 s, so the caller gets the 503 rather than a timeout.
CLIENT_CONFIG = {"connect_timeout": 1, "read_timeout": 2, "retries": {"max_attempts": 2, "mode": "standard"}}


class ApiGatewayUsagePlanKeys:
    """The keys of one usage plan, found by ``plan_name``."""

    def __init__(self, plan_name: str, client: Any = None) -> None:
        self.plan_name = plan_name
        self._client = client
        self._plan_id: str | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client("apigateway", config=Config(**CLIENT_CONFIG))
        return self._client

    def plan_id(self) -> str:
        """The plan's id, looked up by its name once (names are unique per stage: one stack per
        account and region)."""
        with self._lock:
            if self._plan_id is None:
                found = [
                    plan["id"]
                    for page in self.client.get_paginator("get_usage_plans").paginate()
                    for plan in page.get("items", [])
                    if plan.get("name") == self.plan_name
                ]
                if len(found) != 1:
                    raise ConfigurationError(
                        f"expected one API Gateway usage plan named {self.plan_name!r}, found {len(found)}"
                    )
                self._plan_id = str(found[0])
            return self._plan_id

    def register(self, name: str, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            plan = self.plan_id()
            created = self.client.create_api_key(
                name=name, value=key, enabled=True, description=f"Rampart partner {name}"
            )
            try:
                self.client.create_usage_plan_key(usagePlanId=plan, keyId=created["id"], keyType="API_KEY")
            except ClientError as error:
                if _code(error) != "ConflictException":  # already in the plan: what we wanted
                    raise
        except ClientError as error:
            raise ApiKeysUnavailable(f"API Gateway did not take the partner's key ({_code(error)})") from None
        except BotoCoreError as error:
            raise ApiKeysUnavailable(f"API Gateway did not answer ({type(error).__name__})") from None


def _code(error: Any) -> str:
    return str(error.response.get("Error", {}).get("Code", "") or "unknown")
