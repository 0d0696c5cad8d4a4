"""The environment a function runs with, validated once per container (its cold start).

A misconfigured function fails its first invocation with a clear error naming the missing
variables (logged; the caller gets a 500 problem without detail), never later halfway through
a request."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Need = Literal["database", "idempotency_table", "rate_limit_table", "jwt_keys"]


class ConfigurationError(RuntimeError):
    """The function's environment lacks something it needs."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    stage: str = Field("local", alias="RAMPART_STAGE", min_length=1)
    database_url: str | None = Field(None, alias="DATABASE_URL")
    db_proxy_endpoint: str | None = Field(None, alias="RAMPART_DB_PROXY_ENDPOINT")
    db_user: str | None = Field(None, alias="RAMPART_DB_USER")
    idempotency_table: str | None = Field(None, alias="RAMPART_IDEMPOTENCY_TABLE")
    rate_limit_table: str | None = Field(None, alias="RAMPART_RATE_LIMIT_TABLE")
    jwt_secret_arn: str | None = Field(None, alias="RAMPART_JWT_SECRET_ARN")
    jwt_keys: str | None = Field(None, alias="RAMPART_JWT_KEYS")  # the key ring itself (tests)

    def missing(self, needs: set[Need]) -> list[str]:
        """The environment variables absent for ``needs``."""
        absent: list[str] = []
        if "database" in needs and not (self.database_url or (self.db_proxy_endpoint and self.db_user)):
            absent.append("DATABASE_URL (or RAMPART_DB_PROXY_ENDPOINT and RAMPART_DB_USER)")
        if "idempotency_table" in needs and not self.idempotency_table:
            absent.append("RAMPART_IDEMPOTENCY_TABLE")
        if "rate_limit_table" in needs and not self.rate_limit_table:
            absent.append("RAMPART_RATE_LIMIT_TABLE")
        if "jwt_keys" in needs and not (self.jwt_secret_arn or self.jwt_keys):
            absent.append("RAMPART_JWT_SECRET_ARN (or RAMPART_JWT_KEYS)")
        return absent


def validated(needs: set[Need]) -> Settings:
    settings = Settings()  # type: ignore[call-arg]  # pydantic-settings fills the fields from the environment
    absent = settings.missing(needs)
    if absent:
        raise ConfigurationError("this function's environment lacks " + ", ".join(absent))
    return settings
