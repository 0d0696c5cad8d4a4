"""Webhooks in: Standard Webhooks verification and signing, the provider-events queue."""
