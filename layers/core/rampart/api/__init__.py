"""The HTTP side of every API function: resolver, principal, problem+json, idempotency, schemas."""
