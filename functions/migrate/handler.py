"""Run on every deploy: apply pending migrations, then make sure the admin exists with the
credentials of the admin secret (the manifest's ``admin`` secret: JSON ``{"email", "password"}``).
Idempotent: a second run applies nothing and leaves the admin as it is."""

from __future__ import annotations

from typing import Any

from rampart.core.entry import deploy_entry
from rampart.wiring import auth as auth_wiring
from rampart.wiring import database as database_wiring


@deploy_entry("migrate")
def handler(event: dict[str, Any]) -> dict[str, Any]:
    applied = database_wiring.migrate()
    email, password = auth_wiring.admin_secret()
    user = auth_wiring.seed_admin(email, password)
    return {"applied": applied, "admin_id": user.id}
