"""Run on every deploy: apply pending migrations, then make sure the admin exists with the
credentials of the admin secret (``RAMPART_ADMIN_SECRET_ARN``: JSON ``{"email", "password"}``).
Idempotent: a second run applies nothing and leaves the admin as it is."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger

from rampart.adapters.aws.secrets import get_secret_json
from rampart.adapters.postgres.db import database_url
from rampart.adapters.postgres.migrate import migrate
from rampart.wiring import auth as auth_wiring

logger = Logger(service="migrate")


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    applied = migrate(database_url())
    logger.info("migrations applied", extra={"applied": applied})
    secret_arn = os.environ.get("RAMPART_ADMIN_SECRET_ARN")
    if not secret_arn:
        raise RuntimeError("RAMPART_ADMIN_SECRET_ARN is not set: cannot seed the admin")
    admin = get_secret_json(secret_arn, max_age=0)
    email, password = admin.get("email"), admin.get("password")
    if not isinstance(email, str) or not isinstance(password, str):
        raise RuntimeError("the admin secret must be JSON with string fields email and password")
    user = auth_wiring.seed_admin(email, password)
    logger.info("admin seeded", extra={"admin_id": user.id})
    return {"applied": applied, "admin_id": user.id}
