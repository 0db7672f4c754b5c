"""The shell scripts docker-compose.yml mounts into its one-shot containers."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from tests.deploy.static import REPO, tool

SCRIPTS = sorted((REPO / "docker").rglob("*.sh"))


def test_there_are_scripts() -> None:
    assert {p.name for p in SCRIPTS} >= {
        "10-create-databases.sh", "setup-schema.sh", "setup-namespace.sh", "setup.sh"
    }


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_is_posix_sh_with_errexit(script: Path) -> None:
    text = script.read_text()
    assert text.startswith("#!/bin/sh\n"), "the images run these with /bin/sh"
    assert "set -eu" in text
    assert script.stat().st_mode & stat.S_IXUSR
    result = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr


def test_shellcheck_is_clean() -> None:
    result = subprocess.run([tool("shellcheck"), "-s", "sh", *map(str, SCRIPTS)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_minio_policy_is_valid_json_for_the_bucket(tmp_path: Path) -> None:
    """Run the policy-writing part of docker/minio/setup.sh and parse its output."""
    script = (REPO / "docker" / "minio" / "setup.sh").read_text()
    start = script.index("policy=")
    end = script.index('> "$policy"') + len('> "$policy"')
    snippet = script[start:end].replace("/tmp/bucket-policy.json", str(tmp_path / "p.json"))
    env = {"S3_BUCKET": "media-bucket", "PATH": "/usr/bin:/bin"}
    subprocess.run(["sh", "-c", snippet], env=env, check=True)
    policy = json.loads((tmp_path / "p.json").read_text())
    resources = {r for s in policy["Statement"] for r in s["Resource"]}
    assert resources == {"arn:aws:s3:::media-bucket", "arn:aws:s3:::media-bucket/*"}
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket",
            "s3:AbortMultipartUpload"} <= actions
    assert not any(a.endswith("*") for a in actions), "no wildcard actions"
