"""Ségur conformance harness: mocks of the national services, scenarios per couloir, compliance report."""

__version__ = "0.1.0"
