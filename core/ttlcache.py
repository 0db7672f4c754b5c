"""A small in-process cache whose entries expire after a fixed number of seconds.

For lookups on every authenticated request (a user by id, the owner of an API key): a
second's staleness is the price of not asking the database each time, and what changes
them (a deactivation, a revoked key) also forgets the entry in this process at once;
other processes see it within ``seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    def __init__(self, seconds: float, max_items: int = 10_000) -> None:
        self.seconds = seconds
        self.max_items = max_items
        self._items: dict[K, tuple[float, V]] = {}
        self.version = 0
        """Moves on every forget: a value read from the source before a forget may be
        stale, and ``put(..., read_at=version)`` then leaves it out."""

    def get(self, key: K) -> V | None:
        found = self._items.get(key)
        if found is None:
            return None
        expires, value = found
        if expires < time.monotonic():
            self._items.pop(key, None)
            return None
        return value

    def put(self, key: K, value: V, read_at: int | None = None) -> None:
        """Remember ``value``; when ``read_at`` (the :attr:`version` before the value was
        read) is given and something was forgotten since, the value may predate the write
        that caused it, and is not kept."""
        if read_at is not None and read_at != self.version:
            return
        if len(self._items) >= self.max_items:
            self._items.clear()  # rare, and cheaper than tracking an eviction order
        self._items[key] = (time.monotonic() + self.seconds, value)

    def forget(self, key: K) -> None:
        self.version += 1
        self._items.pop(key, None)

    def forget_where(self, matches: Callable[[V], bool]) -> None:
        self.version += 1
        for key in [k for k, (_, value) in self._items.items() if matches(value)]:
            self._items.pop(key, None)
