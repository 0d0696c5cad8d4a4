"""The base of every request model: strict types, no extra fields, and text that can be stored.

PostgreSQL's text types cannot hold NUL (``\\u0000`` is valid JSON, and Python's ``str`` takes
it), so a string carrying one is a validation error on its field (422) instead of a database
fault. Pydantic only: the schema modules of every function import this."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("*")
    @classmethod
    def _storable_text(cls, value: object) -> object:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value
