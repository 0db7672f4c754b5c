"""A Piccolo implementation of fastapi-users' ``BaseUserDatabase``.

fastapi-users ships adapters for SQLAlchemy, Beanie and others, none for Piccolo.
This one follows the official SQLAlchemy adapter's contract (its
``tests/test_users.py`` is ported in ``tests/users/test_db_adapter.py``) with
two deliberate differences, both so that bad input can never surface as a 500:

* A unique-constraint violation (a duplicate email or username that slipped
  past the manager's lookup, e.g. two concurrent registrations) raises
  :class:`UserIntegrityError`, a subclass of fastapi-users' ``UserAlreadyExists``,
  instead of the driver's own IntegrityError. fastapi-users' routers already
  turn ``UserAlreadyExists`` into 400 ``REGISTER_USER_ALREADY_EXISTS`` /
  ``UPDATE_USER_EMAIL_ALREADY_EXISTS``.
* Rows are Piccolo table instances whose JSON columns are already decoded
  (``output(load_json=True)``), so response schemas see dicts, not strings.

The adapter works on any table with fastapi-users' columns (``id, email,
hashed_password, is_active, is_superuser, is_verified``); extra columns pass
through ``create``/``update`` untouched. A table with a ``deleted_at`` column hides
the rows where it is set: an account whose deletion has started is not found, so
it can neither log in nor be read.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any, Generic, cast

import asyncpg
from fastapi_users import exceptions
from fastapi_users.db import BaseUserDatabase
from fastapi_users.models import UP
from piccolo.columns import Column
from piccolo.query.functions.string import Lower
from piccolo.querystring import QueryString
from piccolo.table import Table

from core.ttlcache import TTLCache

USER_CACHE_SECONDS = 1.0
"""How stale a user row read by id may be: a deactivation made by another API process is
honoured within this (in the process that made it, at once)."""
USERS: TTLCache[tuple[str, str], Any] = TTLCache(USER_CACHE_SECONDS)


def forget_user(user_id: Any, table: type[Table]) -> None:
    """Drop a cached row after a write that did not go through the adapter."""
    USERS.forget((table._meta.tablename, str(user_id)))


class UserIntegrityError(exceptions.UserAlreadyExists):
    """A unique column (email, username) already holds the value being written."""


class PiccoloUserDatabase(Generic[UP], BaseUserDatabase[UP, Any]):
    """fastapi-users' user database over a Piccolo table.

    Piccolo tables are bound to their engine globally, so unlike the SQLAlchemy
    adapter this one needs no session: it is cheap to build per request.
    OAuth accounts are not supported (mediaflow has no OAuth login); the OAuth
    methods raise ``NotImplementedError`` exactly like the SQLAlchemy adapter
    does when it is given no OAuth table.
    """

    def __init__(self, user_table: type[Table]) -> None:
        # Columns are looked up by name, so any table with the columns will do;
        # UP is the typed view of its rows (``api.users.models.UserModel``).
        self.user_table: Any = user_table

    async def get(self, id: Any) -> UP | None:
        """By id: every authenticated request asks, so found rows are kept for
        :data:`USER_CACHE_SECONDS` (writes through this adapter forget them at once)."""
        key = (self.user_table._meta.tablename, str(id))
        cached = USERS.get(key)
        if cached is not None:
            return cast(UP, cached)
        read_at = USERS.version  # a write that lands while we read is not undone by us
        user = await self._first(self.user_table._meta.primary_key == id)
        if user is not None:
            USERS.put(key, user, read_at=read_at)
        return user

    async def get_by_email(self, email: str) -> UP | None:
        """Case-insensitive, like the SQLAlchemy adapter's ``func.lower`` lookup.

        Both sides go through the database's LOWER() so Unicode case rules agree,
        and no LIKE pattern is involved (``_`` and ``%`` are legal in emails).
        """
        return await self._first(Lower(self.user_table.email) == _lower(email))

    async def get_by_username(self, username: str) -> UP | None:
        """Case-insensitive: ``Alice`` and ``alice`` are the same login name."""
        return await self._first(Lower(self.user_table.username) == _lower(username))

    async def create(self, create_dict: dict[str, Any]) -> UP:
        row = self.user_table(**create_dict)
        await self._write(row.save())
        created = await self.get(row.id)
        assert created is not None, "a row just inserted must be readable"
        return created

    async def update(self, user: UP, update_dict: dict[str, Any]) -> UP:
        """Write ``update_dict`` and return the row as stored (the SQLAlchemy
        adapter's ``session.refresh``). ``updated_at`` moves when the table has one."""
        if not update_dict:
            return user
        table = self.user_table
        values: dict[Column | str, Any] = {
            table._meta.get_column_by_name(name): value for name, value in update_dict.items()
        }
        if "updated_at" in _column_names(table) and "updated_at" not in update_dict:
            values[table._meta.get_column_by_name("updated_at")] = datetime.now(UTC)
        primary_key = table._meta.primary_key
        await self._write(table.update(values).where(primary_key == user.id))
        forget_user(user.id, table)
        updated = await self.get(user.id)
        if updated is None:  # deleted meanwhile
            raise exceptions.UserNotExists()
        return updated

    async def delete(self, user: UP) -> None:
        table = self.user_table
        await table.delete().where(table._meta.primary_key == user.id)
        forget_user(user.id, table)

    async def get_by_oauth_account(self, oauth: str, account_id: str) -> UP | None:
        raise NotImplementedError("mediaflow has no OAuth accounts")

    async def add_oauth_account(self, user: Any, create_dict: dict[str, Any]) -> Any:
        raise NotImplementedError("mediaflow has no OAuth accounts")

    async def update_oauth_account(
        self, user: Any, oauth_account: Any, update_dict: dict[str, Any]
    ) -> Any:
        raise NotImplementedError("mediaflow has no OAuth accounts")

    async def _first(self, where: Any) -> UP | None:
        query = self.user_table.objects().where(where)
        if "deleted_at" in _column_names(self.user_table):  # an account being deleted is gone
            query = query.where(self.user_table.deleted_at.is_null())
        row = await query.output(load_json=True).first()
        return cast(UP | None, row)

    @staticmethod
    async def _write(query: Any) -> None:
        try:
            await query
        except (asyncpg.exceptions.UniqueViolationError, sqlite3.IntegrityError) as exc:
            # SQLite reports NOT NULL and CHECK failures as IntegrityError too:
            # only a duplicate is a user-facing conflict, the rest are bugs.
            if isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" not in str(exc):
                raise
            raise UserIntegrityError() from exc


def _lower(value: str) -> QueryString:
    return QueryString("LOWER({})", value)


def _column_names(table: type[Table]) -> set[str]:
    return {column._meta.name for column in table._meta.columns}
