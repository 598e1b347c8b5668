"""Adversity tests use the same real-server fixtures as the integration tests."""

from __future__ import annotations

from tests.integration.conftest import own_server, server

__all__ = ["own_server", "server"]
