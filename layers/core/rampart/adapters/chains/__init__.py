"""Chain adapters: one package per kind of chain (``evm`` now; ``stellar`` and ``substrate`` later).
Each implements the port of :mod:`rampart.ramps.chains` and imports its SDK lazily."""
