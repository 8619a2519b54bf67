"""Fixtures of the digest-delivery tests (defined in tests/notifier/delivery.py)."""

from tests.notifier.delivery import base, servers

__all__ = ["base", "servers"]
