"""Rampart: a serverless payments backend. This package ships as the ``rampart`` Lambda layer."""
