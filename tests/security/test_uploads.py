"""Hostile uploads (docs/SECURITY.md #1, #2, #7, #8, #10; #11 and #12 are in
tests/api/routes/test_files.py).

Every case goes through ``POST /files`` on the real app and ffmpeg, and every
refusal is checked for its status *and* for leaving nothing behind: no row for
the user, no object under the user's storage prefix, no scratch file.
"""

from __future__ import annotations

import gzip
import io
import re
import struct
import tarfile
import uuid
import zipfile
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from fastapi import FastAPI

from core.config import Settings
from core.tables import MediaFile
from tests.utils.apps import other_app
from tests.utils.hostile import ASF_HEADER_GUID, PACK_HEADER, bmp_header, gif_bytes, tiff_bytes
from tests.utils.media import make_png, make_video
from tests.utils.users import new_user_headers

API = "/api/v1"
BOUNDARY = "hostile-boundary-7c1e"


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("hostile")
    return {
        "png": make_png(folder / "a.png").read_bytes(),
        "big.png": make_png(folder / "big.png", size="640x480").read_bytes(),
        "2s.mp4": make_video(folder / "2s.mp4", seconds=2, audio=False).read_bytes(),
    }


def multipart(data: bytes, filename: bytes, content_type: str = "video/mp4") -> bytes:
    """A multipart body with the file name exactly as given (httpx would escape it)."""
    return (f"--{BOUNDARY}\r\n".encode()
            + b'Content-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
            + f"Content-Type: {content_type}\r\n\r\n".encode() + data
            + f"\r\n--{BOUNDARY}--\r\n".encode())


async def post_file(client: httpx.AsyncClient, headers: dict[str, str], data: bytes,
                    filename: str | bytes = "clip.mp4", content_type: str = "video/mp4",
                    ) -> httpx.Response:
    if isinstance(filename, str):
        filename = filename.replace("\\", "\\\\").replace('"', '\\"').encode()
    return await client.post(
        f"{API}/files", content=multipart(data, filename, content_type),
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})


class Account:
    """A fresh user, and what it has stored."""

    def __init__(self, client: httpx.AsyncClient, settings: Settings) -> None:
        self.client, self.settings = client, settings
        self.headers: dict[str, str] = {}
        self.id = ""

    async def start(self) -> Account:
        self.headers = await new_user_headers(self.client)
        me = await self.client.get(f"{API}/auth/me", headers=self.headers)
        self.id = me.json()["id"]
        return self

    async def post(self, data: bytes, filename: str | bytes = "clip.mp4",
                   content_type: str = "video/mp4") -> httpx.Response:
        return await post_file(self.client, self.headers, data, filename, content_type)

    async def assert_nothing_stored(self, case: object) -> None:
        rows = await MediaFile.count().where(MediaFile.user == uuid.UUID(self.id))
        objects = [p for p in (self.settings.local_storage_root / "users" / self.id).rglob("*")
                   if p.is_file()]
        scratch = list((self.settings.scratch_root / "uploads").glob("*"))
        assert (rows, objects, scratch) == (0, [], []), case

    async def refused(self, status: int, data: bytes, filename: str | bytes = "clip.mp4",
                      content_type: str = "video/mp4") -> dict[str, Any]:
        response = await self.post(data, filename, content_type)
        case = (filename, content_type, data[:40])
        assert response.status_code == status, (case, response.text)
        await self.assert_nothing_stored(case)
        body: dict[str, Any] = response.json()
        detail = body["detail"]
        assert isinstance(detail, str) and "scratch" not in detail and "/etc" not in detail, body
        assert str(self.settings.data_dir) not in detail, body  # no server paths
        return body


@pytest.fixture(scope="module")
async def module_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture(scope="module")
async def account(module_client: httpx.AsyncClient, settings: Settings) -> Account:
    """One user for every refusal: after each one it must still own nothing."""
    return await Account(module_client, settings).start()


@pytest.fixture(scope="module")
async def named(module_client: httpx.AsyncClient, settings: Settings) -> Account:
    """One user for the accepted hostile names (creating users is the slow part)."""
    return await Account(module_client, settings).start()


# --- item 1: playlists and protocol tricks ----------------------------------------------

PLAYLISTS = {
    "hls file://": b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\nfile:///etc/passwd\n"
                   b"#EXT-X-ENDLIST\n",
    "hls http://": b"#EXTM3U\n#EXTINF:10,\nhttp://169.254.169.254/latest/meta-data/\n",
    "hls concat:": b"#EXTM3U\n#EXTINF:1,\nconcat:/etc/passwd|/etc/hosts\n",
    "hls behind BOM and blanks": b"\xef\xbb\xbf \r\n\t#extm3u\n#EXTINF:1,\nfile:///etc/passwd\n",
    "headerless playlist": b"#EXTINF:1,\nfile:///etc/passwd\n",
    "ffconcat": b"ffconcat version 1.0\nfile '/etc/passwd'\nfile 'http://example.com/x'\n",
    "concat protocol text": b"concat:/etc/passwd|/etc/shadow",
    "subfile": b"subfile,,start,0,end,100,,:/etc/passwd",
}


async def test_playlists_and_protocol_lists_are_415(account: Account) -> None:
    for name, payload in PLAYLISTS.items():
        for filename in ("clip.mp4", "list.m3u8"):
            for content_type in ("video/mp4", "application/vnd.apple.mpegurl"):
                body = await account.refused(415, payload, filename, content_type)
                assert "passwd" not in body["detail"], name


# --- item 7: absurd headers and limits ----------------------------------------------------


def png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR declaring ``width`` x ``height``, then one empty IDAT."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b""))
            + chunk(b"IEND", b""))


async def test_gigantic_image_header_is_refused_before_decoding(account: Account) -> None:
    body = await account.refused(422, png_header(100_000, 100_000), "huge.png", "image/png")
    assert "100000x100000" in body["detail"]


async def test_media_longer_than_the_limit_is_422(
    app: FastAPI, settings: Settings, samples: dict[str, bytes], tmp_path: Path
) -> None:
    async with other_app(settings, data_dir=tmp_path, max_media_seconds=1.0) as (c, s):
        short = await Account(c, s).start()
        body = await short.refused(422, samples["2s.mp4"], "long.mp4")
        assert "limit" in body["detail"]


async def test_the_wider_allowlist_opens_no_bombs(account: Account) -> None:
    """GIF, BMP and TIFF sizes are read from their headers before any decoder, and an
    animation is capped in frames: 422 and nothing stored."""
    cases = {
        "gif canvas": (gif_bytes(1, 65535, 65535), "65535x65535"),
        "bmp": (bmp_header(100_000, 100_000), "100000x100000"),
        "tiff": (tiff_bytes([(100_000, 100_000)]), "100000x100000"),
        "tiff with its directory past the sniffed bytes": (
            tiff_bytes([(30_000, 30_000)], at_end=True), "30000x30000"),
        "100000-frame gif": (gif_bytes(100_000), "100000 frames"),
    }
    for case, (data, detail) in cases.items():
        body = await account.refused(422, data, f"{case}.png", "image/png")
        assert detail in body["detail"], case


async def test_playlists_behind_mpeg_ps_and_asf_headers_are_415(account: Account) -> None:
    text = PLAYLISTS["hls file://"]
    for name, data in {
        "pack.mpg": PACK_HEADER + text,
        "pack-private-stream.mpg": PACK_HEADER + b"\x00\x00\x01\xbd"
        + struct.pack(">H", len(text)) + text,
        "header.wmv": ASF_HEADER_GUID + struct.pack("<Q", 30 + len(text)) + b"\0" * 6 + text,
    }.items():
        body = await account.refused(415, data, name, "video/mpeg")
        assert "passwd" not in body["detail"], name


# --- item 8: not media at all --------------------------------------------------------------


def zip_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("clip.mp4", b"\0" * 1000)
    return buffer.getvalue()


def tar_archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("clip.mp4")
        info.size = 4
        archive.addfile(info, io.BytesIO(b"data"))
    return buffer.getvalue()


async def test_empty_truncated_text_archives_and_executables_are_415(
    account: Account, samples: dict[str, bytes]
) -> None:
    big = samples["big.png"]
    cases = {
        "zero bytes": b"",
        "truncated png": big[: len(big) // 2],
        "png header only": big[:64],
        "text renamed .mp4": b"Just some notes, nothing to watch here.\n" * 20,
        "zip": zip_archive(),
        "tar": tar_archive(),
        "gzip": gzip.compress(b"#EXTM3U\nfile:///etc/passwd\n"),
        "elf": b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4,
        "windows exe": b"MZ\x90\x00\x03" + bytes(range(256)) * 4,
        "shell script": b"#!/bin/sh\nrm -rf /\n",
        "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n",
        "random bytes": bytes((i * 7919) % 251 for i in range(20_000)),
    }
    for case, data in cases.items():
        body = await account.refused(415, data, f"{case}.mp4")
        assert body["detail"], case


# --- item 10: hostile file names --------------------------------------------------------

NAMES: dict[str, tuple[str | bytes, str | None]] = {  # case -> (name sent, expected filename)
    "traversal": ("../../etc/x.mp4", "x.png"),
    "windows traversal": ("..\\..\\windows\\win.ini", "win.png"),
    "absolute": ("/etc/passwd", "passwd.png"),
    "nul byte": (b"evil\x00.sh.mp4", "evil.sh.png"),
    "300 bytes": ("a" * 296 + ".mp4", None),
    "300 bytes of multibyte": ("\u00e9" * 150 + ".mp4", None),
    "leading dash": ("-rf.mp4", "rf.png"),
    "leading dot and dash": (". -.-rf --no-preserve-root.mp4", "rf --no-preserve-root.png"),
    "hidden file": (".bashrc", "bashrc.png"),
    "rtl override": ("invoice\u202egnp.exe.mp4", "invoicegnp.exe.png"),
    "zero width and separators": ("a\u200bb\u2028c\u2029d.mp4", "abcd.png"),
    "quotes and semicolons": ('x"; filename="evil.sh', None),
    "percent encoding": ("%2e%2e%2fetc%2fpasswd.mp4", "%2e%2e%2fetc%2fpasswd.png"),
    "empty": ("", "upload.png"),
    "unicode": ("日本語 ファイル.mp4", "日本語 ファイル.png"),
}
SAFE_FALLBACK = re.compile(r'attachment; filename="([^"\\\x00-\x1f\x7f;%]*)"; '
                           r"filename\*=UTF-8''([A-Za-z0-9%._~-]+)")


@pytest.mark.parametrize("case", list(NAMES))
async def test_hostile_names_are_data_not_paths(
    named: Account, settings: Settings, samples: dict[str, bytes], case: str
) -> None:
    sent, expected = NAMES[case]
    raw = sent if isinstance(sent, bytes) else sent.encode()

    response = await named.post(samples["png"], sent, "video/mp4")

    assert response.status_code == 201, response.text
    body = response.json()
    row = await MediaFile.select(MediaFile.storage_key).where(
        MediaFile.id == uuid.UUID(body["id"])).first()
    assert row is not None and row["storage_key"] == f"users/{named.id}/files/{body['id']}"
    assert (settings.local_storage_root / row["storage_key"]).read_bytes() == samples["png"]
    assert body["original_filename"] == raw.decode().replace("\x00", "\ufffd")

    name = body["filename"]
    if expected is not None:
        assert name == expected
    assert name.endswith(".png") and len(name.encode()) <= 255
    assert "/" not in name and "\\" not in name and not name.startswith((".", "-", " "))
    assert not re.search(r"[\x00-\x1f\x7f\u200b\u202a-\u202e\u2066-\u2069\u2028\u2029]", name)

    download = await named.client.get(f"{API}/files/{body['id']}/download",
                                      headers=named.headers)
    assert download.status_code == 200 and download.content == samples["png"]
    disposition = download.headers["content-disposition"]
    match = SAFE_FALLBACK.fullmatch(disposition)
    assert match, disposition
    assert unquote(match.group(2)) == name
