"""``/files`` end to end over HTTP on PostgreSQL: upload, list, get, download, delete, usage,
quota and size limits, ownership, the S3 backend, and the upload's memory use."""

from __future__ import annotations

import asyncio
import hashlib
import os
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from cli.devstack import free_ports
from core.config import Settings
from core.filenames import content_disposition
from core.tables import Job, MediaFile
from tests.conftest import REPO, strong_secret
from tests.probe.samples import ASS
from tests.storage.backends import CREDENTIALS, make_s3_storage
from tests.storage.conftest import moto_endpoint  # noqa: F401 (a fixture, reused)
from tests.utils.apps import other_app, same_volume
from tests.utils.media import make_audio, make_png, make_video
from tests.utils.users import new_user_headers

API = "/api/v1"
MIB = 1024 * 1024
FILE_FIELDS = {"id", "filename", "original_filename", "size", "content_type", "kind",
               "checksum_sha256", "metadata", "source", "job_id", "created_at",
               "status", "error", "source_url"}  # the last three: URL imports
METADATA_FIELDS = {"duration", "duration_source", "format", "width", "height", "fps", "vfr",
                   "rotation", "video_codec", "audio_codec", "sample_rate", "channels",
                   "bit_rate", "streams"}


# --- helpers -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("files-media")
    cues = "".join(f"{n}\n00:00:{n - 1:02d},000 --> 00:00:{n:02d},000\nLine {n}\n\n"
                   for n in range(1, 21))
    (folder / "subs.srt").write_text(cues)
    (folder / "subs.ass").write_text(ASS)
    return {
        "clip.mp4": make_video(folder / "clip.mp4", seconds=1),
        "tone.wav": make_audio(folder / "tone.wav", seconds=1),
        "logo.png": make_png(folder / "logo.png"),
        "subs.srt": folder / "subs.srt",
        "subs.ass": folder / "subs.ass",
    }


async def upload(client: httpx.AsyncClient, headers: dict[str, str], data: bytes,
                 name: str = "clip.mp4", content_type: str = "application/octet-stream",
                 ) -> httpx.Response:
    return await client.post(f"{API}/files", headers=headers,
                             files={"file": (name, data, content_type)})


async def user_id(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    return (await client.get(f"{API}/auth/me", headers=headers)).json()["id"]


async def usage(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, int]:
    response = await client.get(f"{API}/files/usage", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def stored_objects(settings: Settings, uid: str) -> list[Path]:
    """Every file under the user's prefix in local storage, temporary ones included."""
    return [p for p in (settings.local_storage_root / "users" / uid).rglob("*") if p.is_file()]


def scratch_uploads(settings: Settings) -> list[Path]:
    return list((settings.scratch_root / "uploads").glob("*"))


async def row_count(uid: str) -> int:
    return await MediaFile.count().where(MediaFile.user == uuid.UUID(uid))


def multipart_body(data_chunks: Iterator[bytes], name: str = "big.mp4",
                   boundary: str = "mediaflow-test-boundary") -> tuple[str, AsyncIterator[bytes]]:
    """A hand-made multipart body streamed from ``data_chunks`` (no Content-Length)."""
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{name}\"\r\nContent-Type: video/mp4\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    async def body() -> AsyncIterator[bytes]:
        yield head
        for chunk in data_chunks:
            yield chunk
        yield tail

    return f"multipart/form-data; boundary={boundary}", body()


# --- the round trip --------------------------------------------------------------------

CASES = {  # sample -> (name sent, content type sent, kind, content type, format, extension)
    "clip.mp4": ("holiday clip.mp4", "video/mp4", "video", "video/mp4", "mp4", "mp4"),
    "tone.wav": ("tone.wav", "audio/wav", "audio", "audio/wav", "wav", "wav"),
    "logo.png": ("logo.png", "image/png", "image", "image/png", "png", "png"),
    "subs.srt": ("subs.srt", "application/x-subrip", "subtitle", "application/x-subrip", "srt",
                 "srt"),
}


@pytest.mark.parametrize("sample", list(CASES))
async def test_upload_list_get_download_delete(
    client: httpx.AsyncClient, media: dict[str, Path], sample: str
) -> None:
    name, sent_type, kind, content_type, fmt, ext = CASES[sample]
    data = media[sample].read_bytes()
    headers = await new_user_headers(client)
    before = await usage(client, headers)
    assert before["used_bytes"] == 0 and before["file_count"] == 0

    created = await upload(client, headers, data, name, sent_type)

    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == FILE_FIELDS
    assert set(body["metadata"]) == METADATA_FIELDS
    uuid.UUID(body["id"])
    assert body["filename"] == name.rsplit(".", 1)[0] + f".{ext}"
    assert body["original_filename"] == name
    assert body["size"] == len(data)
    assert body["checksum_sha256"] == hashlib.sha256(data).hexdigest()
    assert (body["kind"], body["content_type"]) == (kind, content_type)
    assert body["source"] == "upload" and body["job_id"] is None
    assert body["created_at"]
    meta = body["metadata"]
    assert meta["format"] == fmt and meta["streams"]
    if kind == "video":
        assert (meta["width"], meta["height"], meta["fps"]) == (320, 240, 25)
        assert meta["video_codec"] == "h264" and meta["audio_codec"] == "aac"
        assert meta["duration"] == pytest.approx(1.0, abs=0.1)
        assert meta["channels"] == 2 and meta["sample_rate"] == 48000 and meta["bit_rate"] > 0
    elif kind == "audio":
        assert meta["audio_codec"] == "pcm_s16le" and meta["sample_rate"] == 48000
        assert meta["width"] is None and meta["video_codec"] is None
        assert meta["duration"] == pytest.approx(1.0, abs=0.05)
    elif kind == "image":
        assert (meta["width"], meta["height"]) == (64, 64) and meta["video_codec"] == "png"
        assert meta["duration"] is None and meta["fps"] is None
    else:
        assert meta["duration"] == 20.0 and meta["streams"][0]["cues"] == 20

    listed = (await client.get(f"{API}/files", headers=headers)).json()
    assert listed == {"items": [body], "total": 1}
    got = await client.get(f"{API}/files/{body['id']}", headers=headers)
    assert got.status_code == 200 and got.json() == body
    assert await usage(client, headers) == {
        "used_bytes": len(data), "quota_bytes": before["quota_bytes"], "file_count": 1}

    url = f"{API}/files/{body['id']}/download"
    full = await client.get(url, headers=headers)
    assert full.status_code == 200
    assert full.content == data
    assert full.headers["content-type"].startswith(content_type)
    assert full.headers["content-length"] == str(len(data))
    assert full.headers["accept-ranges"] == "bytes"
    assert full.headers["content-disposition"] == content_disposition(body["filename"])

    part = await client.get(url, headers={**headers, "Range": "bytes=10-99"})
    assert part.status_code == 206
    assert part.content == data[10:100]
    assert part.headers["content-range"] == f"bytes 10-99/{len(data)}"
    assert part.headers["content-length"] == "90"
    suffix = await client.get(url, headers={**headers, "Range": "bytes=-100"})
    assert suffix.status_code == 206 and suffix.content == data[-100:]
    assert suffix.headers["content-range"] == f"bytes {len(data) - 100}-{len(data) - 1}/{len(data)}"
    open_end = await client.get(url, headers={**headers, "Range": f"bytes={len(data) - 7}-"})
    assert open_end.status_code == 206 and open_end.content == data[-7:]
    beyond = await client.get(url, headers={**headers, "Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(data)}"
    inverted = await client.get(url, headers={**headers, "Range": "bytes=50-10"})
    assert inverted.status_code == 200 and inverted.content == data  # invalid: ignored

    deleted = await client.delete(f"{API}/files/{body['id']}", headers=headers)
    assert deleted.status_code == 204
    for gone in (await client.get(f"{API}/files/{body['id']}", headers=headers),
                 await client.get(url, headers=headers),
                 await client.delete(f"{API}/files/{body['id']}", headers=headers)):
        assert gone.status_code == 404
    assert (await client.get(f"{API}/files", headers=headers)).json() == {"items": [], "total": 0}
    after = await usage(client, headers)
    assert after["used_bytes"] == 0 and after["file_count"] == 0


async def test_ass_is_stored_without_embedded_fonts(
    client: httpx.AsyncClient, media: dict[str, Path]
) -> None:
    headers = await new_user_headers(client)

    created = await upload(client, headers, media["subs.ass"].read_bytes(), "karaoke.ass",
                           "text/x-ssa")

    assert created.status_code == 201, created.text
    body = created.json()
    assert body["kind"] == "subtitle" and body["content_type"] == "text/x-ssa"
    stored = (await client.get(f"{API}/files/{body['id']}/download", headers=headers)).content
    assert b"[Fonts]" not in stored and b"[Graphics]" not in stored and b"evil.ttf" not in stored
    assert b"[Events]" in stored and b"Hello, world" in stored
    assert body["size"] == len(stored) < media["subs.ass"].stat().st_size
    assert body["checksum_sha256"] == hashlib.sha256(stored).hexdigest()


async def test_kind_comes_from_the_probe_not_the_header(
    client: httpx.AsyncClient, media: dict[str, Path]
) -> None:
    headers = await new_user_headers(client)

    created = await upload(client, headers, media["logo.png"].read_bytes(), "x.mp4", "video/mp4")

    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["kind"], body["content_type"]) == ("image", "image/png")
    assert body["filename"] == "x.png" and body["original_filename"] == "x.mp4"
    download = await client.get(f"{API}/files/{body['id']}/download", headers=headers)
    assert download.headers["content-type"] == "image/png"


async def test_list_pages_and_filters_by_kind(
    client: httpx.AsyncClient, media: dict[str, Path]
) -> None:
    headers = await new_user_headers(client)
    ids = []
    for sample in ("logo.png", "tone.wav", "logo.png"):
        created = await upload(client, headers, media[sample].read_bytes(), sample)
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])

    first = (await client.get(f"{API}/files?limit=2", headers=headers)).json()
    second = (await client.get(f"{API}/files?limit=2&offset=2", headers=headers)).json()

    assert first["total"] == second["total"] == 3
    assert len(first["items"]) == 2 and len(second["items"]) == 1
    paged = [f["id"] for f in first["items"] + second["items"]]
    assert sorted(paged) == sorted(ids)  # every file once, no overlap between pages
    assert paged[0] == ids[2]  # newest first
    images = (await client.get(f"{API}/files?kind=image", headers=headers)).json()
    assert images["total"] == 2 and {f["kind"] for f in images["items"]} == {"image"}
    audio = (await client.get(f"{API}/files?kind=audio", headers=headers)).json()
    assert [f["id"] for f in audio["items"]] == [ids[1]]
    none = (await client.get(f"{API}/files?kind=video", headers=headers)).json()
    assert none == {"items": [], "total": 0}
    for bad in ("kind=movie", "limit=0", "limit=201", "offset=-1"):
        response = await client.get(f"{API}/files?{bad}", headers=headers)
        assert response.status_code == 422, bad
        assert response.json()["detail"][0]["loc"][0] == "query"


async def test_files_need_a_credential(client: httpx.AsyncClient, media: dict[str, Path]) -> None:
    data = media["logo.png"].read_bytes()
    assert (await upload(client, {}, data)).status_code == 401
    assert (await client.get(f"{API}/files")).status_code == 401
    assert (await client.get(f"{API}/files/usage")).status_code == 401
    assert (await client.get(f"{API}/files/{uuid.uuid4()}/download")).status_code == 401


async def test_a_body_in_tiny_chunks_is_stored_exactly(
    client: httpx.AsyncClient, media: dict[str, Path]
) -> None:
    """Thousands of small pieces between writes: every byte lands once, in order."""
    data = media["clip.mp4"].read_bytes()
    headers = await new_user_headers(client)
    content_type, body = multipart_body(data[i : i + 97] for i in range(0, len(data), 97))

    created = await client.post(f"{API}/files", content=body,
                                headers={**headers, "Content-Type": content_type})

    assert created.status_code == 201, created.text
    assert created.json()["checksum_sha256"] == hashlib.sha256(data).hexdigest()
    download = await client.get(f"{API}/files/{created.json()['id']}/download", headers=headers)
    assert download.content == data


# --- bad bodies ----------------------------------------------------------------------


async def test_missing_or_malformed_body_is_422(
    client: httpx.AsyncClient, settings: Settings, media: dict[str, Path]
) -> None:
    headers = await new_user_headers(client)
    uid = await user_id(client, headers)
    data = media["logo.png"].read_bytes()
    boundary = "b0undary"
    multipart = {**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    truncated = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                 f"filename=\"a.png\"\r\n\r\n").encode() + data  # no closing boundary

    answers = {
        "other field": await client.post(f"{API}/files", headers=headers,
                                         files={"upload": ("a.png", data, "image/png")}),
        "json": await client.post(f"{API}/files", headers=headers, json={"file": "x"}),
        "no body": await client.post(f"{API}/files", headers=headers),
        "raw bytes": await client.post(f"{API}/files", content=data,
                                       headers={**headers, "Content-Type": "image/png"}),
        "no boundary": await client.post(f"{API}/files", content=data, headers={
            **headers, "Content-Type": "multipart/form-data"}),
        "truncated": await client.post(f"{API}/files", content=truncated, headers=multipart),
        "garbage": await client.post(f"{API}/files", headers=multipart,
                                     content=b"--b0undary\r\nno headers here\x00\r\n\r\n"),
    }

    for case, response in answers.items():
        assert response.status_code == 422, (case, response.text)
        assert response.json()["detail"][0]["loc"] == ["body", "file"], case
    assert await row_count(uid) == 0
    assert stored_objects(settings, uid) == [] and scratch_uploads(settings) == []


async def test_a_form_field_named_file_still_needs_the_bytes(
    client: httpx.AsyncClient, media: dict[str, Path]
) -> None:
    """A multipart field ``file`` without a filename (``curl -F 'file=<x'``) is the file
    part too: its bytes are probed like any other. A urlencoded form is no upload at all."""
    headers = await new_user_headers(client)

    as_part = await client.post(f"{API}/files", headers=headers, data={"file": "hello"},
                                files={"note": ("note.txt", b"1", "text/plain")})
    urlencoded = await client.post(f"{API}/files", headers=headers, data={"file": "hello"})

    assert as_part.status_code == 415
    assert "subtitles" in as_part.json()["detail"]
    assert urlencoded.status_code == 422


# --- limits ----------------------------------------------------------------------------


async def test_over_quota_is_413_and_leaves_nothing(
    app: FastAPI, settings: Settings, media: dict[str, Path], tmp_path: Path
) -> None:
    png, mp4 = media["logo.png"].read_bytes(), media["clip.mp4"].read_bytes()
    quota = len(png) + len(mp4) // 2
    async with other_app(settings, data_dir=tmp_path, user_quota_bytes=quota) as (c, s):
        headers = await new_user_headers(c)
        uid = await user_id(c, headers)
        assert (await upload(c, headers, png, "logo.png")).status_code == 201

        declared = await upload(c, headers, mp4)  # Content-Length says it cannot fit
        content_type, body = multipart_body(iter([mp4]))
        streamed = await c.post(f"{API}/files", content=body,
                                headers={**headers, "Content-Type": content_type})

        for response in (declared, streamed):
            assert response.status_code == 413, response.text
            assert "quota" in response.json()["detail"]
        assert await usage(c, headers) == {"used_bytes": len(png), "quota_bytes": quota,
                                           "file_count": 1}
        assert await row_count(uid) == 1
        assert len(stored_objects(s, uid)) == 1 and scratch_uploads(s) == []


async def test_parallel_uploads_cannot_squeeze_past_the_quota(
    app: FastAPI, settings: Settings, media: dict[str, Path], tmp_path: Path
) -> None:
    """Both pass the check before receiving; the check at insert time stops the second."""
    mp4 = media["clip.mp4"].read_bytes()
    quota = len(mp4) * 3 // 2
    async with other_app(settings, data_dir=tmp_path, user_quota_bytes=quota) as (c, s):
        headers = await new_user_headers(c)
        uid = await user_id(c, headers)

        answers = await asyncio.gather(upload(c, headers, mp4, "a.mp4"),
                                       upload(c, headers, mp4, "b.mp4"))

        assert sorted(r.status_code for r in answers) == [201, 413]
        assert (await usage(c, headers))["used_bytes"] == len(mp4)
        assert await row_count(uid) == 1
        assert len(stored_objects(s, uid)) == 1 and scratch_uploads(s) == []


async def test_over_max_upload_bytes_is_413_while_streaming(
    app: FastAPI, settings: Settings, tmp_path: Path
) -> None:
    limit, chunk = MIB, 64 * 1024
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(8 * MIB // chunk):  # 8x the limit, if the server kept reading
            sent += chunk
            yield b"\0" * chunk

    async with other_app(settings, data_dir=tmp_path, max_upload_bytes=limit) as (c, s):
        headers = await new_user_headers(c)
        uid = await user_id(c, headers)
        content_type, body = multipart_body(chunks())

        response = await c.post(f"{API}/files", content=body,
                                headers={**headers, "Content-Type": content_type})

        assert response.status_code == 413, response.text
        assert response.json()["detail"] == f"upload exceeds the {limit}-byte limit"
        assert limit < sent <= limit + 2 * chunk  # cut off at the limit, not after the body
        assert await row_count(uid) == 0
        assert stored_objects(s, uid) == [] and scratch_uploads(s) == []

        sent = 0
        content_type, body = multipart_body(chunks())
        declared = await c.post(f"{API}/files", content=body, headers={
            **headers, "Content-Type": content_type, "Content-Length": str(8 * MIB + 200)})
        assert declared.status_code == 413
        assert sent == 0  # refused from the header alone, before reading the body


# --- ownership and deletion ------------------------------------------------------------


async def test_another_users_file_is_404(client: httpx.AsyncClient, media: dict[str, Path]) -> None:
    alice, bob = await new_user_headers(client), await new_user_headers(client)
    created = await upload(client, alice, media["logo.png"].read_bytes(), "mine.png")
    file_id = created.json()["id"]

    for response in (await client.get(f"{API}/files/{file_id}", headers=bob),
                     await client.get(f"{API}/files/{file_id}/download", headers=bob),
                     await client.get(f"{API}/files/{file_id}/download",
                                      headers={**bob, "Range": "bytes=0-10"}),
                     await client.delete(f"{API}/files/{file_id}", headers=bob)):
        assert response.status_code == 404
        assert response.json() == {"detail": "file not found"}
    assert (await client.get(f"{API}/files", headers=bob)).json() == {"items": [], "total": 0}
    assert (await usage(client, bob))["file_count"] == 0
    still = await client.get(f"{API}/files/{file_id}", headers=alice)
    assert still.status_code == 200  # bob's delete did nothing
    for bad in ("not-a-uuid", str(uuid.uuid4())):
        assert (await client.get(f"{API}/files/{bad}", headers=alice)).status_code == 404


async def test_delete_is_409_while_an_active_job_uses_the_file(
    client: httpx.AsyncClient, media: dict[str, Path]
) -> None:
    headers = await new_user_headers(client)
    uid = await user_id(client, headers)
    file_id = (await upload(client, headers, media["clip.mp4"].read_bytes())).json()["id"]
    job = Job(user=uuid.UUID(uid), type="text_overlay", status="processing",
              input_files=[file_id], workflow_id=f"job-{uuid.uuid4()}")
    await job.save()

    for active in ("processing", "paused", "pending"):
        await Job.update({Job.status: active}).where(Job.id == job.id)
        refused = await client.delete(f"{API}/files/{file_id}", headers=headers)
        assert refused.status_code == 409, active
        assert (await client.get(f"{API}/files/{file_id}", headers=headers)).status_code == 200

    await Job.update({Job.status: "completed"}).where(Job.id == job.id)
    assert (await client.delete(f"{API}/files/{file_id}", headers=headers)).status_code == 204
    row = await MediaFile.select(MediaFile.is_deleted, MediaFile.deleted_at).where(
        MediaFile.id == uuid.UUID(file_id)).first()
    assert row is not None and row["is_deleted"] and row["deleted_at"] is not None


# --- S3 ----------------------------------------------------------------------------------


async def test_s3_upload_download_and_presigned_redirect(
    app: FastAPI, settings: Settings, media: dict[str, Path], moto_endpoint: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    bucket = f"files-{uuid.uuid4().hex[:12]}"
    checker = make_s3_storage(moto_endpoint, bucket)
    await checker.ensure_bucket()
    s3 = {"data_dir": tmp_path, "storage": "s3", "s3_endpoint_url": moto_endpoint,
          "s3_bucket": bucket, "s3_access_key": CREDENTIALS["access_key"],
          "s3_secret_key": SecretStr(CREDENTIALS["secret_key"]),
          "s3_region": CREDENTIALS["region"]}
    data = media["clip.mp4"].read_bytes()
    try:
        async with other_app(settings, **s3, s3_presign=False) as (c, s):
            headers = await new_user_headers(c)
            uid = await user_id(c, headers)
            created = await upload(c, headers, data, "trip.mp4", "video/mp4")
            assert created.status_code == 201, created.text
            body = created.json()
            url = f"{API}/files/{body['id']}/download"

            full = await c.get(url, headers=headers)
            part = await c.get(url, headers={**headers, "Range": "bytes=-100"})

            assert full.status_code == 200 and full.content == data
            assert part.status_code == 206 and part.content == data[-100:]
            stat = await checker.stat(f"users/{uid}/files/{body['id']}")
            assert stat is not None and stat.size == len(data)
            assert scratch_uploads(s) == []

        async with other_app(settings, **s3, s3_presign=True) as (c, _):
            redirect = await c.get(url, headers=headers)
            assert redirect.status_code == 307
            location = redirect.headers["location"]
            assert location.startswith(f"{moto_endpoint}/{bucket}/users/{uid}/files/{body['id']}?")
            async with httpx.AsyncClient() as plain:  # no credential: the URL is the grant
                direct = await plain.get(location)
            assert direct.status_code == 200 and direct.content == data
            assert direct.headers["content-disposition"] == content_disposition("trip.mp4")

            assert (await c.delete(f"{API}/files/{body['id']}", headers=headers)).status_code == 204
            assert (await c.get(url, headers=headers)).status_code == 404
    finally:
        await checker.close()


# --- memory --------------------------------------------------------------------------


def padded_mp4(mp4: bytes, total: int, chunk: int = MIB) -> Iterator[bytes]:
    """A real MP4 followed by one ``free`` box, ``total`` bytes in all: ffprobe skips the
    box, so the upload is accepted and stored like any large video."""
    pad = total - len(mp4) - 8
    yield mp4
    yield struct.pack(">I", pad + 8) + b"free"
    block = os.urandom(chunk)
    while pad > 0:
        yield block[: min(chunk, pad)]
        pad -= chunk


class RssSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.process, self.interval = psutil.Process(pid), interval
        self.peak, self.stop = 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)


@pytest.mark.slow
async def test_a_large_upload_does_not_grow_the_api_process(
    pg_url: str, settings: Settings, media: dict[str, Path], tmp_path: Path
) -> None:
    """The real API (uvicorn, one process) receives 200 MiB; its RSS must stay flat."""
    port, size = free_ports(1)[0], 200 * MIB
    same_volume(settings, tmp_path / "data")
    env = {**os.environ, "MEDIAFLOW_ENV": "test", "MEDIAFLOW_DATABASE_URL": pg_url,
           "MEDIAFLOW_JWT_SECRET": strong_secret(), "MEDIAFLOW_DATA_DIR": str(tmp_path / "data"),
           "MEDIAFLOW_TEMPORAL_ADDRESS": settings.temporal_address,
           "MEDIAFLOW_LOG_LEVEL": "WARNING"}
    log = (tmp_path / "api.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "cli.main", "api", "--port", str(port)],
                              cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60) as c:
            for _ in range(200):
                try:
                    await c.get(f"{API}/openapi.json")
                    break
                except httpx.TransportError:
                    assert server.poll() is None, (tmp_path / "api.log").read_text()
                    await asyncio.sleep(0.05)
            tag = uuid.uuid4().hex[:10]
            account = {"email": f"rss-{tag}@example.com", "username": f"rss_{tag}",
                       "password": "Memory1234"}
            assert (await c.post(f"{API}/auth/register", json=account)).status_code == 201
            login = await c.post(f"{API}/auth/login", json={
                "email_or_username": account["username"], "password": account["password"]})
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            mp4 = media["clip.mp4"].read_bytes()
            warm = await upload(c, headers, mp4)  # first-use imports and buffers
            assert warm.status_code == 201, warm.text

            sampler = RssSampler(server.pid)
            baseline = sampler.process.memory_info().rss
            digest = hashlib.sha256()

            def hashed() -> Iterator[bytes]:
                for chunk in padded_mp4(mp4, size):
                    digest.update(chunk)
                    yield chunk

            content_type, body = multipart_body(hashed())
            sampler.start()
            started = time.perf_counter()
            response = await c.post(f"{API}/files", content=body,
                                    headers={**headers, "Content-Type": content_type})
            elapsed = time.perf_counter() - started
            sampler.stop.set()
            sampler.join()

        assert response.status_code == 201, response.text
        assert response.json()["size"] == size
        assert response.json()["checksum_sha256"] == digest.hexdigest()
        growth = (sampler.peak - baseline) / MIB
        print(f"\n200 MiB upload in {elapsed:.2f} s ({size / MIB / elapsed:.0f} MiB/s); "
              f"API RSS {baseline / MIB:.0f} MiB -> peak {sampler.peak / MIB:.0f} MiB "
              f"(+{growth:.1f} MiB)")
        assert growth < 64, f"RSS grew by {growth:.1f} MiB"
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
