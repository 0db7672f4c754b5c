"""``/users`` (fastapi-users' router on our adapter) end to end over HTTP."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import pytest

from core.tables import Job, MediaFile
from tests.utils.users import create_user, login_headers, new_user_headers


async def test_me_and_patch_me(client: httpx.AsyncClient, api_prefix: str) -> None:
    user, password = await create_user()
    headers = await login_headers(client, user.email, password)
    new_name = f"renamed_{uuid.uuid4().hex[:8]}"

    me = await client.get(f"{api_prefix}/users/me", headers=headers)
    assert me.status_code == 200 and me.json()["email"] == user.email

    patched = await client.patch(
        f"{api_prefix}/users/me",
        headers=headers,
        json={"username": new_name, "password": "N3wPassword"},
    )

    assert patched.status_code == 200, patched.text
    assert patched.json()["username"] == new_name
    await login_headers(client, new_name, "N3wPassword")
    old = await client.post(
        f"{api_prefix}/auth/login", json={"email_or_username": user.email, "password": password}
    )
    assert old.status_code == 400


async def test_patch_me_cannot_raise_privileges_or_settings(
    client: httpx.AsyncClient, api_prefix: str
) -> None:
    headers = await new_user_headers(client)

    response = await client.patch(
        f"{api_prefix}/users/me",
        headers=headers,
        json={"is_superuser": True, "is_verified": True, "settings": {"max_jobs": 1000}},
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["is_superuser"], body["is_verified"], body["settings"]) == (False, False, {})


async def test_patch_me_refusals(client: httpx.AsyncClient, api_prefix: str) -> None:
    other, _ = await create_user()
    headers = await new_user_headers(client)

    weak = await client.patch(f"{api_prefix}/users/me", headers=headers, json={"password": "weak"})
    assert weak.status_code == 400
    assert weak.json()["detail"]["code"] == "UPDATE_USER_INVALID_PASSWORD"

    for field, value in (("email", other.email.upper()), ("username", other.username.upper())):
        taken = await client.patch(f"{api_prefix}/users/me", headers=headers, json={field: value})
        assert taken.status_code == 400, field
        assert taken.json() == {"detail": "UPDATE_USER_EMAIL_ALREADY_EXISTS"}

    nulls = await client.patch(
        f"{api_prefix}/users/me", headers=headers, json={"email": None, "password": None}
    )
    assert nulls.status_code == 200


async def test_superuser_manages_users(client: httpx.AsyncClient, api_prefix: str) -> None:
    admin_headers = await new_user_headers(client, superuser=True)
    user, password = await create_user()
    url = f"{api_prefix}/users/{user.id}"

    fetched = await client.get(url, headers=admin_headers)
    assert fetched.status_code == 200 and fetched.json()["username"] == user.username

    patched = await client.patch(
        url, headers=admin_headers, json={"settings": {"max_jobs": 2}, "is_verified": True}
    )
    assert patched.status_code == 200
    assert patched.json()["settings"] == {"max_jobs": 2}
    assert patched.json()["is_verified"] is True

    user_headers = await login_headers(client, user.email, password)
    deactivated = await client.patch(url, headers=admin_headers, json={"is_active": False})
    assert deactivated.json()["is_active"] is False
    assert (await client.get(f"{api_prefix}/users/me", headers=user_headers)).status_code == 401

    deleted = await client.delete(url, headers=admin_headers)
    assert deleted.status_code == 202 and deleted.json()["status"] == "deleting"
    assert (await client.get(url, headers=admin_headers)).status_code == 404


async def test_unknown_or_malformed_user_id_is_404(
    client: httpx.AsyncClient, api_prefix: str
) -> None:
    admin_headers = await new_user_headers(client, superuser=True)

    for user_id in (uuid.uuid4(), "not-a-uuid"):
        response = await client.get(f"{api_prefix}/users/{user_id}", headers=admin_headers)
        assert response.status_code == 404


async def _holdings(user_id: uuid.UUID, jobs: int, sizes: list[int],
                    deleted_size: int | None = None) -> None:
    for n in range(jobs):
        await Job(user=user_id, type="join", status="completed",
                  workflow_id=f"job-list-{uuid.uuid4().hex[:8]}-{n}").save()
    for size in [*sizes, *([deleted_size] if deleted_size else [])]:
        await MediaFile(user=user_id, filename="a.mp4", original_filename="a.mp4", size=size,
                        content_type="video/mp4", kind="video",
                        storage_key=f"users/{user_id}/files/{uuid.uuid4()}",
                        checksum_sha256="0" * 64, is_deleted=size == deleted_size).save()


async def test_operators_list_users_with_what_they_hold(
    client: httpx.AsyncClient, api_prefix: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    ada, _ = await create_user(email=f"Ada.{tag}@Example.com", username=f"ada_{tag}")
    bob, _ = await create_user(email=f"bob.{tag}@example.com", username=f"Bobby_{tag}")
    await _holdings(ada.id, jobs=3, sizes=[100, 250], deleted_size=999)
    admin = await new_user_headers(client, superuser=True)

    found = await client.get(f"{api_prefix}/users", headers=admin, params={"q": f"ADA.{tag}"})
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["total"] == 1 and [u["id"] for u in body["items"]] == [str(ada.id)]
    item = body["items"][0]
    assert (item["job_count"], item["file_count"], item["storage_bytes"]) == (3, 2, 350)
    assert item["username"] == f"ada_{tag}" and "hashed_password" not in item
    assert {"email", "is_active", "is_superuser", "is_verified", "settings",
            "created_at"} <= set(item)

    by_name = (await client.get(f"{api_prefix}/users", headers=admin,
                                params={"q": f"bobby_{tag.upper()}"})).json()
    assert [u["id"] for u in by_name["items"]] == [str(bob.id)]
    assert by_name["items"][0]["job_count"] == 0 and by_name["items"][0]["storage_bytes"] == 0

    both = (await client.get(f"{api_prefix}/users", headers=admin, params={"q": tag})).json()
    assert both["total"] == 2 and [u["id"] for u in both["items"]] == [str(ada.id), str(bob.id)]
    page = (await client.get(f"{api_prefix}/users", headers=admin,
                             params={"q": tag, "limit": 1, "offset": 1})).json()
    assert page["total"] == 2 and [u["id"] for u in page["items"]] == [str(bob.id)]

    everyone = (await client.get(f"{api_prefix}/users", headers=admin)).json()
    assert everyone["total"] >= 3 and len(everyone["items"]) <= 50


async def test_user_search_is_literal(client: httpx.AsyncClient, api_prefix: str) -> None:
    """``%`` and ``_`` in q are characters, not wildcards; control characters are refused."""
    admin = await new_user_headers(client, superuser=True)
    tag = uuid.uuid4().hex[:8]
    await create_user(username=f"under_{tag}")
    assert (await client.get(f"{api_prefix}/users", headers=admin,
                             params={"q": f"under%{tag}"})).json()["total"] == 0
    assert (await client.get(f"{api_prefix}/users", headers=admin,
                             params={"q": f"under_{tag}"})).json()["total"] == 1
    assert (await client.get(f"{api_prefix}/users", headers=admin,
                             params={"q": f"unde__{tag}"})).json()["total"] == 0  # not "under_"
    bad = await client.get(f"{api_prefix}/users", headers=admin, params={"q": "a\x00b"})
    assert bad.status_code == 422
    assert (await client.get(f"{api_prefix}/users", headers=admin,
                             params={"limit": 201})).status_code == 422


async def test_only_operators_list_users(client: httpx.AsyncClient, api_prefix: str) -> None:
    headers = await new_user_headers(client)
    assert (await client.get(f"{api_prefix}/users", headers=headers)).status_code == 403
    assert (await client.get(f"{api_prefix}/users")).status_code == 401
    schema = (await client.get(f"{api_prefix}/openapi.json")).json()
    operation = schema["paths"]["/api/v1/users"]["get"]
    assert operation["operationId"] == "users-list"
    assert {"200", "401", "403", "422", "429", "503"} <= set(operation["responses"])


async def test_operator_stats_average_in_the_database(
    client: httpx.AsyncClient, api_prefix: str
) -> None:
    user, _ = await create_user()
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for seconds in (2.5, 7.5):
        await Job(user=user.id, type="trim", status="completed", started_at=start,
                  completed_at=start + dt.timedelta(seconds=seconds),
                  workflow_id=f"job-stats-{uuid.uuid4().hex[:8]}").save()
    admin = await new_user_headers(client, superuser=True)
    stats = await client.get(f"{api_prefix}/admin/stats", headers=admin)
    assert stats.status_code == 200, stats.text

    expected: dict[str, list[float]] = {}
    for row in await Job.select(Job.type, Job.started_at, Job.completed_at).where(
            Job.status == "completed", Job.started_at.is_not_null(),
            Job.completed_at.is_not_null()):
        expected.setdefault(row["type"], []).append(
            (row["completed_at"] - row["started_at"]).total_seconds())
    assert stats.json()["mean_duration_seconds_by_type"] == pytest.approx(
        {t: round(sum(v) / len(v), 3) for t, v in expected.items()}, abs=0.001)
    assert stats.json()["jobs_by_type"]["trim"] >= 2
