"""The database itself: migrations (the deploy step)."""

from __future__ import annotations

from rampart.core.settings import ConfigurationError, settings


def migrate() -> list[str]:
    """Apply every pending migration to the function's database; the ids applied, in order. Then,
    in the cloud (``RAMPART_DB_ROLE_SECRETS``), set each login role's password from its secret."""
    from rampart.adapters.postgres.db import database_url
    from rampart.adapters.postgres.migrate import migrate as apply
    from rampart.adapters.postgres.migrate import set_passwords

    url = database_url()
    applied = apply(url)
    secrets = settings().role_secrets()
    if secrets:
        set_passwords(database_url(), {role: role_password(arn) for role, arn in secrets.items()})
    return applied


def role_password(arn: str) -> str:
    """The password of a database role's secret (``{"username", "password", …}``, as RDS makes it)."""
    from rampart.adapters.aws.secrets import get_secret
    from rampart.core import jsonbody

    value = jsonbody.loads(get_secret(arn, max_age=0))  # rotation may have changed it
    password = value.get("password") if isinstance(value, dict) else None
    if not isinstance(password, str) or not password:
        raise ConfigurationError(f"the database role secret {arn} has no password")
    return password
