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

    def get(self, key: K) -> V | None:
        found = self._items.get(key)
        if found is None:
            return None
        expires, value = found
        if expires < time.monotonic():
            self._items.pop(key, None)
            return None
        return value

    def put(self, key: K, value: V) -> None:
        if len(self._items) >= self.max_items:
            self._items.clear()  # rare, and cheaper than tracking an eviction order
        self._items[key] = (time.monotonic() + self.seconds, value)

    def forget(self, key: K) -> None:
        self._items.pop(key, None)

    def forget_where(self, matches: Callable[[V], bool]) -> None:
        for key in [k for k, (_, value) in self._items.items() if matches(value)]:
            self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()
