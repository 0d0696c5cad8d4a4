"""Price sources for quotes."""
