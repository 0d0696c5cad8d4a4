"""The only runtime code that picks adapters: one small factory module per domain."""
