"""Migrations run forwards and backwards on PostgreSQL and forwards on SQLite."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg

from core.tables import ApiKey, Job, MediaFile, OperationLog, RefreshToken, User
from tests.conftest import PG_SERVER, REPO, create_database, drop_database, run_cli

TABLES = {"mf_user", "mf_api_key", "mf_refresh_token", "mf_job", "mf_media_file", "mf_template",
          "mf_operation_log"}
COMPOSITE_INDEXES = {"mf_job_user_status", "mf_job_user_idempotency", "mf_media_file_user_kind",
                     "mf_user_email_lower", "mf_user_username_lower",
                     "mf_operation_log_type_started", "mf_template_owner_name"}


def piccolo(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "piccolo.main", *args],
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120, cwd=REPO)


async def pg_tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        indexes = await conn.fetch("SELECT indexname FROM pg_indexes WHERE schemaname='public'")
    finally:
        await conn.close()
    return {r["tablename"] for r in rows} | {r["indexname"] for r in indexes}


async def test_postgres_forwards_then_backwards() -> None:
    url = await create_database(PG_SERVER)
    env = {"MEDIAFLOW_DATABASE_URL": url, "PICCOLO_CONF": "piccolo_conf"}
    try:
        forwards = run_cli("migrate", env=env)
        assert forwards.returncode == 0, forwards.stderr
        names = await pg_tables(url)
        assert TABLES <= names and COMPOSITE_INDEXES <= names

        again = run_cli("migrate", env=env)  # idempotent
        assert again.returncode == 0, again.stderr

        back = piccolo("migrations", "backwards", "core", "--migration_id=all", "--auto_agree",
                       env=env)
        assert back.returncode == 0, back.stdout + back.stderr
        assert not (TABLES | COMPOSITE_INDEXES) & await pg_tables(url)
    finally:
        await drop_database(url)


def test_sqlite_forwards(tmp_path: Path) -> None:
    db = tmp_path / "mediaflow.sqlite"
    result = run_cli("migrate", env={"MEDIAFLOW_DATABASE_URL": f"sqlite:///{db}"})
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert TABLES <= tables and COMPOSITE_INDEXES <= tables


def test_default_database_is_sqlite_in_data_dir(tmp_path: Path) -> None:
    env = {"MEDIAFLOW_DATA_DIR": str(tmp_path), "MEDIAFLOW_DATABASE_URL": ""}
    result = run_cli("migrate", env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "mediaflow.sqlite").stat().st_size > 0


async def test_table_round_trips(db_engine: object) -> None:
    user = User(email=f"{uuid.uuid4().hex[:8]}@example.com", username=uuid.uuid4().hex[:12],
                hashed_password="x", settings={"theme": "dark"})
    await user.save()
    await ApiKey(user=user.id, name="ci", prefix="mf_abc", key_hash=uuid.uuid4().hex).save()
    await RefreshToken(user=user.id, token_hash=uuid.uuid4().hex,
                       expires_at=dt.datetime.now(dt.UTC)).save()
    job = Job(user=user.id, type="join", spec={"type": "join", "params": {"inputs": ["a", "b"]}},
              input_files=["a", "b"], workflow_id="job-x", idempotency_key="k1")
    await job.save()
    media = MediaFile(user=user.id, filename="a.mp4", original_filename="../a.mp4", size=3,
                      content_type="video/mp4", kind="video", storage_key="users/x/files/y",
                      checksum_sha256="0" * 64, metadata={"duration": 1.5}, job=job.id,
                      source="job_output")
    await media.save()
    await OperationLog(job=job.id, step=0, operation_type="join", argv=["ffmpeg", "-y"]).save()

    loaded = await Job.objects().output(load_json=True).get(Job.id == job.id)
    assert loaded.spec["params"]["inputs"] == ["a", "b"] and loaded.status == "pending"
    f = await MediaFile.objects().output(load_json=True).get(MediaFile.id == media.id)
    assert f.metadata == {"duration": 1.5} and f.job == job.id
    logs = await OperationLog.select().where(OperationLog.job == job.id).output(load_json=True)
    assert logs[0]["argv"] == ["ffmpeg", "-y"]

    # unique (user, idempotency_key)
    duplicate = Job(user=user.id, type="join", workflow_id="job-y", idempotency_key="k1")
    try:
        await duplicate.save()
    except asyncpg.UniqueViolationError:
        pass
    else:
        raise AssertionError("a second job with the same idempotency key was accepted")

    # emails and usernames are unique whatever their case, in the database itself
    for clash in ({"email": user.email.upper(), "username": uuid.uuid4().hex[:12]},
                  {"email": f"{uuid.uuid4().hex[:8]}@example.com",
                   "username": user.username.upper()}):
        try:
            await User(hashed_password="x", **clash).save()
        except asyncpg.UniqueViolationError:
            continue
        raise AssertionError(f"a case-only duplicate was accepted: {clash}")

    await User.delete().where(User.id == user.id)  # cascades
    assert not await Job.exists().where(Job.id == job.id)


def test_sqlite_upgrades_from_either_shape_of_the_deleted_at_migration(tmp_path: Path) -> None:
    """For a while one migration (2026-11-28T03) added deleted_at, share_generation and the
    operation log index together; before that it added deleted_at alone. A data directory
    migrated under either shape reaches the same schema."""
    db = tmp_path / "mediaflow.sqlite"
    env = {"MEDIAFLOW_DATABASE_URL": f"sqlite:///{db}"}
    assert run_cli("migrate", env=env).returncode == 0

    def columns() -> set[str]:
        with sqlite3.connect(db) as conn:
            return {r[1] for r in conn.execute("PRAGMA table_info(mf_media_file)")}

    for shape in ("combined", "deleted_at alone"):
        with sqlite3.connect(db) as conn:
            conn.execute("DELETE FROM migration WHERE name = '2026-11-28T04:00:00:000000'")
            if shape == "deleted_at alone":
                conn.execute("DROP INDEX mf_operation_log_type_started")
                conn.execute("ALTER TABLE mf_media_file DROP COLUMN share_generation")
        assert ("share_generation" in columns()) == (shape == "combined")
        upgraded = run_cli("migrate", env=env)
        assert upgraded.returncode == 0, shape + upgraded.stderr
        with sqlite3.connect(db) as conn:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            applied = {r[0] for r in conn.execute("SELECT name FROM migration")}
        assert "share_generation" in columns() and COMPOSITE_INDEXES <= names, shape
        assert "2026-11-28T04:00:00:000000" in applied
