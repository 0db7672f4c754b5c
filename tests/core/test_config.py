"""Settings: the documented names and defaults, secret strength outside dev."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import GIB, Settings, WeakSecretError, secret_problem
from tests.conftest import run_cli, strong_secret


def test_spec_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    s = Settings()
    assert s.data_dir == Path("./.mediaflow")
    assert s.resolved_database_url.startswith("sqlite:///") and s.resolved_database_url.endswith(
        ".mediaflow/mediaflow.sqlite")
    assert (s.temporal_address, s.temporal_namespace, s.storage) == ("localhost:7233", "default",
                                                                       "local")
    assert s.max_upload_bytes == 2 * GIB and s.user_quota_bytes == 10 * GIB
    assert s.max_media_seconds == 4 * 3600 and s.max_pixels == 8192 * 8192
    assert s.webhook_allow_private is False
    assert Settings(env="dev").webhook_allow_private is True


def test_env_prefix_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("MEDIAFLOW_STORAGE=s3\nMEDIAFLOW_S3_BUCKET=media-x\n")
    monkeypatch.setenv("MEDIAFLOW_MAX_UPLOAD_BYTES", "1234")
    s = Settings()
    assert (s.storage, s.s3_bucket, s.max_upload_bytes) == ("s3", "media-x", 1234)


@pytest.mark.parametrize("secret", [None, "", "short", "changeme-changeme-changeme-changeme",
                                    "a" * 64, "abababababababababababababababab"])
def test_weak_secrets_refused_outside_dev(secret: str | None) -> None:
    assert secret_problem(secret) is not None
    with pytest.raises(WeakSecretError):
        Settings(env="production", jwt_secret=secret).check_startup()


def test_strong_secret_accepted() -> None:
    secret = strong_secret()
    assert Settings(env="production", jwt_secret=secret).jwt_secret_value() == secret


def test_dev_generates_and_keeps_a_secret(tmp_path: Path) -> None:
    first = Settings(env="dev", data_dir=tmp_path).jwt_secret_value()
    second = Settings(env="dev", data_dir=tmp_path).jwt_secret_value()
    assert first == second and secret_problem(first) is None
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o077 == 0


def test_api_refuses_to_start_with_a_weak_secret(tmp_path: Path) -> None:
    result = run_cli("api", "--port", "1", env={"MEDIAFLOW_ENV": "production",
                                                "MEDIAFLOW_JWT_SECRET": "secret",
                                                "MEDIAFLOW_DATA_DIR": str(tmp_path)}, timeout=60)
    assert result.returncode == 2
    assert "refusing to start" in result.stderr and "MEDIAFLOW_JWT_SECRET" in result.stderr


def test_worker_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    result = run_cli("worker", env={"MEDIAFLOW_ENV": "production", "MEDIAFLOW_JWT_SECRET": "",
                                    "MEDIAFLOW_DATA_DIR": str(tmp_path)}, timeout=60)
    assert result.returncode == 2 and "MEDIAFLOW_JWT_SECRET is not set" in result.stderr


def test_scratch_dir_defaults_under_the_data_dir_and_empty_means_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDIAFLOW_SCRATCH_DIR", "")
    assert Settings(data_dir=tmp_path).scratch_root == (tmp_path / "scratch").resolve()
    monkeypatch.setenv("MEDIAFLOW_SCRATCH_DIR", str(tmp_path / "fast-disk"))
    assert Settings(data_dir=tmp_path / "d").scratch_root == (tmp_path / "fast-disk").resolve()
