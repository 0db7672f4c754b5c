"""Fixtures shared by the API tests."""

from __future__ import annotations

import pytest

from tests.utils.apps import reset_rate_limits


@pytest.fixture(autouse=True)
def fresh_rate_limits(app: object) -> None:
    """Every test starts with empty counters, so tests cannot spend each other's limits."""
    reset_rate_limits(app)
