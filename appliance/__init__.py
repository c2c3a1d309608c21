"""Keepline engine: the appliance's SIP engine, stores, edge supervision and device adapters."""

__version__ = "0.1.0"
