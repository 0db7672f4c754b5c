"""``PiccoloUserDatabase`` against the contract of fastapi-users-db-sqlalchemy.

A port of that adapter's ``tests/test_users.py`` (create/get/update/delete,
case-insensitive email lookup, duplicate email, custom fields, OAuth refused)
on a bare fastapi-users table created for the test, as the original does — on
PostgreSQL and on SQLite (what ``mediaflow dev`` runs) — then on mediaflow's own
``User`` table.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fastapi_users.exceptions import UserAlreadyExists
from piccolo.columns import UUID, Boolean, Varchar
from piccolo.columns.defaults.uuid import UUID4
from piccolo.engine.base import Engine
from piccolo.engine.sqlite import SQLiteEngine
from piccolo.table import Table

from api.users.db import PiccoloUserDatabase, UserIntegrityError
from core.tables import User


class AdapterTestUser(Table, tablename="adapter_test_user"):
    """fastapi-users' base user columns plus one custom field, like the original."""

    id = UUID(primary_key=True, default=UUID4())
    email = Varchar(length=320, unique=True, index=True)
    hashed_password = Varchar(length=1024)
    is_active = Boolean(default=True)
    is_superuser = Boolean(default=False)
    is_verified = Boolean(default=False)
    first_name = Varchar(length=255, null=True, default=None)


@pytest.fixture(params=["postgresql", "sqlite"])
async def user_db(
    request: pytest.FixtureRequest, db_engine: Engine, tmp_path: Path
) -> AsyncIterator[PiccoloUserDatabase[Any]]:
    engine = db_engine if request.param == "postgresql" else SQLiteEngine(str(tmp_path / "u.db"))
    AdapterTestUser._meta.db = engine
    await AdapterTestUser.create_table(if_not_exists=True)
    yield PiccoloUserDatabase(AdapterTestUser)
    await AdapterTestUser.alter().drop_table()


@pytest.fixture
def mediaflow_user_db(db_engine: object) -> PiccoloUserDatabase[User]:
    return PiccoloUserDatabase(User)


async def test_queries(user_db: PiccoloUserDatabase[Any]) -> None:
    user_create = {"email": "lancelot@camelot.bt", "hashed_password": "guinevere"}

    user = await user_db.create(user_create)
    assert user.id is not None
    assert user.is_active is True
    assert user.is_superuser is False
    assert user.email == user_create["email"]

    updated_user = await user_db.update(user, {"is_superuser": True})
    assert updated_user.is_superuser is True

    id_user = await user_db.get(user.id)
    assert id_user is not None
    assert id_user.id == user.id
    assert id_user.is_superuser is True

    email_user = await user_db.get_by_email(user_create["email"])
    assert email_user is not None
    assert email_user.id == user.id

    email_user = await user_db.get_by_email("Lancelot@camelot.bt")
    assert email_user is not None
    assert email_user.id == user.id

    assert await user_db.get_by_email("galahad@camelot.bt") is None

    await user_db.delete(user)
    assert await user_db.get(user.id) is None

    with pytest.raises(NotImplementedError):
        await user_db.get_by_oauth_account("foo", "bar")
    with pytest.raises(NotImplementedError):
        await user_db.add_oauth_account(user, {})
    with pytest.raises(NotImplementedError):
        await user_db.update_oauth_account(user, object(), {})


async def test_insert_existing_email(user_db: PiccoloUserDatabase[Any]) -> None:
    user_create = {"email": "lancelot@camelot.bt", "hashed_password": "guinevere"}
    await user_db.create(user_create)

    # The SQLAlchemy adapter leaks the driver's IntegrityError; ours is one type
    # for every driver, and the one fastapi-users' routers turn into a 400.
    with pytest.raises(UserIntegrityError) as raised:
        await user_db.create(user_create)
    assert isinstance(raised.value, UserAlreadyExists)
    assert (
        len(await AdapterTestUser.select().where(AdapterTestUser.email == user_create["email"]))
        == 1
    )


async def test_queries_custom_fields(user_db: PiccoloUserDatabase[Any]) -> None:
    user = await user_db.create(
        {"email": "lancelot@camelot.bt", "hashed_password": "guinevere", "first_name": "Lancelot"}
    )

    id_user = await user_db.get(user.id)
    assert id_user is not None
    assert id_user.id == user.id
    assert id_user.first_name == user.first_name == "Lancelot"


async def test_email_lookup_is_not_a_pattern(
    user_db: PiccoloUserDatabase[Any],
) -> None:
    """``_`` and ``%`` are legal in emails and must not act as LIKE wildcards."""
    await user_db.create({"email": "a_b@camelot.bt", "hashed_password": "x"})

    assert await user_db.get_by_email("axb@camelot.bt") is None
    assert await user_db.get_by_email("%@camelot.bt") is None
    assert await user_db.get_by_email("A_B@CAMELOT.BT") is not None


async def test_update_nothing_is_a_no_op(user_db: PiccoloUserDatabase[Any]) -> None:
    user = await user_db.create({"email": "lancelot@camelot.bt", "hashed_password": "guinevere"})

    assert (await user_db.update(user, {})).email == user.email


async def test_mediaflow_user_table(mediaflow_user_db: PiccoloUserDatabase[User]) -> None:
    """mediaflow's own columns: username lookups, decoded JSON settings, timestamps."""
    tag = uuid.uuid4().hex[:8]
    user = await mediaflow_user_db.create(
        {"email": f"Merlin-{tag}@Camelot.bt", "username": f"Merlin_{tag}", "hashed_password": "h"}
    )
    assert user.settings == {}
    assert user.created_at is not None

    by_name = await mediaflow_user_db.get_by_username(f"merlin_{tag}")
    assert by_name is not None and by_name.id == user.id
    assert await mediaflow_user_db.get_by_username("merlin_%") is None

    updated = await mediaflow_user_db.update(user, {"settings": {"max_jobs": 3}})
    assert updated.settings == {"max_jobs": 3}
    assert updated.updated_at > user.updated_at
    assert (await mediaflow_user_db.get(user.id)).settings == {"max_jobs": 3}  # type: ignore[union-attr]

    with pytest.raises(UserIntegrityError):
        await mediaflow_user_db.create(
            {
                "email": f"other-{tag}@camelot.bt",
                "username": f"Merlin_{tag}",
                "hashed_password": "h",
            }
        )
    await mediaflow_user_db.delete(user)
    assert await mediaflow_user_db.get_by_username(f"merlin_{tag}") is None


async def test_update_to_taken_email(mediaflow_user_db: PiccoloUserDatabase[User]) -> None:
    tag = uuid.uuid4().hex[:8]
    first = await mediaflow_user_db.create(
        {"email": f"first-{tag}@camelot.bt", "username": f"first_{tag}", "hashed_password": "h"}
    )
    second = await mediaflow_user_db.create(
        {"email": f"second-{tag}@camelot.bt", "username": f"second_{tag}", "hashed_password": "h"}
    )

    with pytest.raises(UserIntegrityError):
        await mediaflow_user_db.update(second, {"email": first.email})
    assert (await mediaflow_user_db.get(second.id)).email == second.email  # type: ignore[union-attr]
