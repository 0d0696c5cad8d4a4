"""Rail adapters: the providers' HTTP APIs (``pix`` now, ``sepa`` later), behind the port
:mod:`rampart.ramps.rails`."""
