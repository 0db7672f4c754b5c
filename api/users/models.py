"""The user as the auth code sees it: a typed view of a ``core.tables.User`` row.

Piccolo declares columns as class attributes (``User.email`` is a ``Varchar``),
so type checkers cannot tell that a fetched row has ``email: str``, and
fastapi-users' generics (bound to its ``UserProtocol``) refuse the table class.
This Protocol states what a fetched row holds; the adapter returns rows under
it, and ``CurrentUser`` hands it to routes, so ``user.id`` is a ``UUID`` there.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol


class UserModel(Protocol):
    id: uuid.UUID
    email: str
    username: str
    hashed_password: str
    is_active: bool
    is_superuser: bool
    is_verified: bool
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime
