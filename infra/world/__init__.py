"""The outside world of the twin, as its own process (ARCHITECTURE.md, "The outside world is its own
process"): the ``base`` chain (:mod:`infra.world.base`), the ``pix`` rail with its BRLA issuer
(:mod:`infra.world.pix`), the signed webhooks they send (:mod:`infra.world.webhooks`), the scripts
that make them misbehave on purpose (:mod:`infra.world.scripts`) and ``/_sim`` — all behind one HTTP
server (:mod:`infra.world.server`), started with ``python -m infra.world`` or
:mod:`infra.world.launcher`. State lives under a data dir (``.data/world`` for ``make run``), so a
restart continues where it was. Twin-only: never deployed, never imported by ``rampart`` or
``functions``. docs/world.md describes it.
"""
