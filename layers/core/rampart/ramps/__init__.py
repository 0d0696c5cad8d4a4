"""Ramps: fiat ↔ token through a corridor's chains and rails (ARCHITECTURE.md, "Ramps").

So far the ports the ramp services will drive: :mod:`rampart.ramps.chains` (EVM now, Stellar and
Substrate later) and :mod:`rampart.ramps.rails` (PIX now, SEPA later). No SDK is imported here.
"""
