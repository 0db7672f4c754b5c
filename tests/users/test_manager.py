"""The password policy and username rules, without HTTP."""

from __future__ import annotations

import pytest
from fastapi_users.exceptions import InvalidPasswordException, UserAlreadyExists
from pydantic import ValidationError

from api.users.db import PiccoloUserDatabase
from api.users.manager import UserManager, generate_password, password_problem
from api.users.schemas import UserCreate
from core.tables import User
from tests.utils.users import create_user


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("Sh0rt", "at least 8"),
        ("alllower123", "upper-case"),
        ("ALLUPPER123", "lower-case"),
        ("NoDigitsHere", "digit"),
        ("Xx1" + "a" * 300, "at most"),
        ("Arthur-Pendragon1", "email or username"),  # contains the username
        ("1Xarthur@camelot.bt", "email or username"),  # contains the email
        ("ARTHUR99zz", "email or username"),  # the email's local part, any case
    ],
)
def test_password_policy_refuses(password: str, reason: str) -> None:
    problem = password_problem(password, email="arthur@camelot.bt", username="Pendragon1")
    assert problem is not None and reason in problem


def test_password_policy_accepts_a_good_password() -> None:
    assert password_problem("Excalibur42", email="arthur@camelot.bt", username="king") is None


def test_generated_passwords_pass_the_policy() -> None:
    passwords = {generate_password(email="a@b.c", username="abc") for _ in range(50)}
    assert len(passwords) == 50
    assert all(password_problem(p, email="a@b.c", username="abc") is None for p in passwords)


@pytest.mark.parametrize("username", ["ab", "x" * 33, "has space", "bad/slash", "émile", "a@b"])
def test_username_rules(username: str) -> None:
    with pytest.raises(ValidationError) as raised:
        UserCreate(email="a@example.com", username=username, password="Excalibur42")
    assert raised.value.errors()[0]["loc"] == ("username",)


@pytest.mark.parametrize("username", ["abc", "A.b-c_9", "x" * 32])
def test_username_accepted(username: str) -> None:
    user = UserCreate(email="a@example.com", username=username, password="Excalibur42")
    assert user.username == username


async def test_manager_refuses_weak_password_and_taken_username(db_engine: object) -> None:
    manager = UserManager(PiccoloUserDatabase(User))
    existing, _ = await create_user()

    with pytest.raises(InvalidPasswordException):
        await manager.create(
            UserCreate(email="weak@example.com", username="weakling", password="password")
        )
    with pytest.raises(UserAlreadyExists):
        await manager.create(
            UserCreate(
                email="new@example.com", username=existing.username.upper(), password="Excalibur42"
            )
        )
