"""Hostile pipelines (docs/SECURITY.md #6, #18, #19) against the real API, worker and ffmpeg.

* 6: subtitle names full of filtergraph specials, ASS scripts with embedded fonts, and
  style/fonts-dir parameters never reach ffmpeg; only server-made scratch paths do.
* 19: webhook targets on loopback, private, link-local and metadata addresses (also spelt as
  IPv6 forms that embed them, or as a host name) are refused unless allowed.
* Combined graphs that cannot run get a 422 whose ``loc`` names the offending field.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
import pytest

from core.config import Settings
from core.plan.escape import escape_filter_value
from core.webhooks import WebhookTargetRefused, check_target
from tests.jobs.test_pipelines import FFmpegCounter, run_counting_ffmpeg
from tests.utils.apps import other_app
from tests.utils.jobs import download, upload
from tests.utils.media import SRT, duration, ffprobe, stream_types
from tests.utils.users import new_user_headers

pytestmark = pytest.mark.usefixtures("worker")

FAST = {"preset": "ultrafast"}
HOSTILE_SUBTITLE_NAMES = [
    "a:b.srt",
    "it's.srt",
    "[0:v]drawtext=text=OWNED[v].srt",
    "x,subtitles=filename=etc.srt",
    "back\\slash\\'quote.srt",
    "all:of'them[0],here\\now.srt",
]
ASS_SCRIPT = """[Script Info]
ScriptType: v4.00+
PlayResX: 320
PlayResY: 240

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, Bold, Italic, Alignment
Style: Default,EvilFont,20,&H00FFFFFF,0,0,2

[Fonts]
fontname: evil_0.ttf
{font}
[Events]
Format: Layer, Start, End, Style, Text
Dialogue: 0,0:00:00.00,0:00:01.50,Default,Embedded fonts are dropped
"""


async def burn(client: httpx.AsyncClient, headers: dict, video: str, subs: str,
               **params: object) -> tuple[dict, FFmpegCounter]:
    return await run_counting_ffmpeg(client, headers, {
        "type": "subtitles",
        "params": {"video": video, "subtitles": subs, "mode": "burn", **params},
        "output": FAST})


# --------------------------------------------------------------------------- SECURITY.md #6


@pytest.mark.parametrize("name", HOSTILE_SUBTITLE_NAMES, ids=range(len(HOSTILE_SUBTITLE_NAMES)))
async def test_subtitle_file_names_never_reach_ffmpeg(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, tmp_path: Path,
    settings: Settings, name: str,
) -> None:
    path = tmp_path / name
    path.write_text(SRT)
    subs = await upload(client, headers, path)
    stored = (await client.get(f"/api/v1/files/{subs}", headers=headers)).json()
    assert stored["kind"] == "subtitle" and stored["original_filename"] == name
    video = await upload(client, headers, media_dir / "b.mp4")
    done, counter = await burn(client, headers, video, subs)
    assert done["status"] == "completed", done
    [argv] = counter.argvs.values()
    scratch = str(settings.scratch_root / done["id"])
    stem = name.rsplit(".", 1)[0]
    assert not any(stem in arg for arg in argv), argv
    graph = argv[argv.index("-filter_complex") + 1]
    # the subtitles filter reads a file we named, in the step's scratch directory
    burned = re.search(r"subtitles=filename=(.+?/in\d+\.srt)\[", graph)
    assert burned and burned.group(1).startswith(escape_filter_value(scratch + "/")), graph
    inputs = [argv[n + 1] for n, arg in enumerate(argv) if arg == "-i"]
    assert inputs and all(target.startswith(scratch + "/") for target in inputs), inputs
    out = await download(client, headers, done["output_files"][0], tmp_path / "o.mp4")
    assert duration(ffprobe(out)) == pytest.approx(1.5, abs=0.15)


async def test_ass_embedded_fonts_are_stripped_at_upload_and_burn_works(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, tmp_path: Path
) -> None:
    # ~3 MB of uuencoded "font" (80-character lines of the ASS font alphabet)
    line = "".join(chr(33 + (n % 64)) for n in range(80))
    script = ASS_SCRIPT.format(font="\n".join([line] * 40_000))
    path = tmp_path / "styled:[Fonts].ass"
    path.write_text(script)
    assert path.stat().st_size > 3_000_000
    subs = await upload(client, headers, path)
    stored = (await client.get(f"/api/v1/files/{subs}", headers=headers)).json()
    assert stored["kind"] == "subtitle"
    assert stored["size"] < 2_000, stored["size"]  # what is kept is the script, not the font
    kept = (await download(client, headers, subs, tmp_path / "kept.ass")).read_text()
    assert "[Fonts]" not in kept and "fontname:" not in kept and line not in kept
    assert "[Events]" in kept and "Embedded fonts are dropped" in kept
    video = await upload(client, headers, media_dir / "a.mp4")
    done, counter = await burn(client, headers, video, subs)
    assert done["status"] == "completed", done
    [argv] = counter.argvs.values()
    assert not any("fontsdir" in arg for arg in argv)
    probe = ffprobe(await download(client, headers, done["output_files"][0], tmp_path / "o.mp4"))
    assert stream_types(probe) == ["audio", "video"]
    assert duration(probe) == pytest.approx(2.0, abs=0.15)


@pytest.mark.parametrize("extra", [
    {"force_style": "FontName=/etc/passwd"},
    {"fontsdir": "/tmp"},
    {"charenc": "UTF-8"},
    {"filename": "/etc/passwd"},
    {"original_size": "1x1"},
])
async def test_subtitle_filter_options_are_unknown_fields(
    client: httpx.AsyncClient, headers: dict, extra: dict
) -> None:
    ids = {"video": str(uuid.uuid4()), "subtitles": str(uuid.uuid4())}
    for spec, prefix in (
        ({"type": "subtitles", "params": {**ids, **extra}}, ["body", "params"]),
        ({"type": "combined", "params": {"steps": [
            {"id": "s", "type": "subtitles", "params": {**ids, **extra}}]}},
         ["body", "params", "steps", 0, "params"]),
    ):
        response = await client.post("/api/v1/jobs", headers=headers, json=spec)
        assert response.status_code == 422, response.text
        [error] = response.json()["detail"]
        assert error["type"] == "extra_forbidden"
        assert error["loc"] == [*prefix, next(iter(extra))]


@pytest.mark.parametrize("font", ["../../../../etc/passwd", "/tmp/evil.ttf", "EvilFont"])
async def test_subtitle_font_is_an_allowlisted_name(
    client: httpx.AsyncClient, headers: dict, font: str
) -> None:
    response = await client.post("/api/v1/jobs", headers=headers, json={
        "type": "subtitles",
        "params": {"video": str(uuid.uuid4()), "subtitles": str(uuid.uuid4()), "font": font}})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "params", "font"]


# --------------------------------------------------------------------------- SECURITY.md #19

REFUSED_TARGETS = [
    "http://127.0.0.1:8080/hook",
    "http://10.0.0.1/hook",
    "http://192.168.1.1/hook",
    "http://172.16.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://localhost/hook",
    "http://localhost./hook",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://0.0.0.0/hook",
    "http://100.64.0.1/hook",
    "http://[fd00::1]/hook",
    "http://[fe80::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:169.254.169.254]/hook",
    "http://[2002:a9fe:a9fe::1]/hook",  # 6to4 around 169.254.169.254
    "http://[64:ff9b::7f00:1]/hook",  # NAT64 around 127.0.0.1
    "http://[::127.0.0.1]/hook",  # IPv4-compatible
    "http://2130706433/hook",  # 127.0.0.1 as one number
    "http://0x7f.1/hook",
    "http://user:pw@example.com/hook",
    "ftp://example.com/hook",
]


@pytest.fixture(scope="module")
async def strict_client(settings: Settings, db_engine: object):
    async with other_app(settings, webhook_allow_private=False) as (client, _):
        yield client


async def test_private_webhook_targets_are_refused_by_default(
    strict_client: httpx.AsyncClient, media_dir: Path
) -> None:
    headers = await new_user_headers(strict_client)
    video = await upload(strict_client, headers, media_dir / "b.mp4")
    for url in REFUSED_TARGETS:
        spec = {"type": "text_overlay", "params": {"video": video, "text": "x"},
                "webhook": {"url": url, "secret": "s"}}
        for route in ("/api/v1/jobs", "/api/v1/jobs/validate"):
            response = await strict_client.post(route, headers=headers, json=spec)
            assert response.status_code == 422, (url, response.text)
            assert response.json()["detail"][0]["loc"][:3] == ["body", "webhook", "url"], url
    assert (await strict_client.get("/api/v1/jobs", headers=headers)).json()["total"] == 0


@pytest.mark.parametrize("url", REFUSED_TARGETS)
def test_check_target_refuses(url: str) -> None:
    with pytest.raises(WebhookTargetRefused):
        check_target(url, allow_private=False)


@pytest.mark.parametrize("url", [
    "https://8.8.8.8/hook", "http://[2001:4860:4860::8888]:8443/hook",
    "http://[::ffff:8.8.8.8]/hook", "http://[2002:808:808::1]/hook",
])
def test_check_target_accepts_public_addresses(url: str) -> None:
    assert check_target(url, allow_private=False)


def test_private_targets_are_allowed_when_configured() -> None:
    assert "127.0.0.1" in check_target("http://127.0.0.1:9/x", allow_private=True)


# --------------------------------------------------------------------------- graphs: 422 + loc


def text_step(step_id: str, video: str) -> dict:
    return {"id": step_id, "type": "text_overlay", "params": {"video": video, "text": step_id}}


async def refused(client: httpx.AsyncClient, headers: dict, spec: dict) -> list[dict]:
    response = await client.post("/api/v1/jobs", headers=headers, json=spec)
    assert response.status_code == 422, response.text
    assert (await client.post("/api/v1/jobs/validate", headers=headers,
                              json=spec)).status_code == 422
    return response.json()["detail"]


STEPS = ["body", "params", "steps"]


@pytest.mark.parametrize(("steps", "loc", "kind"), [
    ([text_step("a", "{video}"), text_step("b", "@nope")],
     [*STEPS, 1, "params", "video"], "unknown_ref"),
    ([text_step("a", "@b"), text_step("b", "{video}")],
     [*STEPS, 0, "params", "video"], "forward_ref"),
    ([text_step("a", "@a")], [*STEPS, 0, "params", "video"], "self_ref"),
    ([text_step("a", "{video}"), text_step("a", "{video}")], [*STEPS, 1, "id"],
     "duplicate_step"),
    ([text_step("a", "{video}"),
      {"id": "b", "type": "subtitles", "params": {"video": "{video}", "subtitles": "@a"}}],
     [*STEPS, 1, "params", "subtitles"], "ref_kind"),
    ([text_step("a", "{video}"),
      {"id": "b", "type": "join", "params": {"inputs": ["{video}", "@a"], "mode": "copy"}}],
     [*STEPS, 1, "params", "mode"], "copy_ref"),
], ids=["unknown", "forward", "self", "duplicate", "video-as-subtitles", "copy-of-a-step"])
async def test_graph_errors_name_the_field(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, steps: list, loc: list,
    kind: str,
) -> None:
    video = await upload(client, headers, media_dir / "b.mp4")
    body = [{**s, "params": {k: (v.replace("{video}", video) if isinstance(v, str) else
                                 [i.replace("{video}", video) for i in v]
                                 if isinstance(v, list) else v)
                             for k, v in s["params"].items()}} for s in steps]
    detail = await refused(client, headers, {"type": "combined", "params": {"steps": body}})
    assert [(d["loc"], d["type"]) for d in detail] == [(loc, kind)], detail


async def test_twenty_one_steps_are_refused(client: httpx.AsyncClient, headers: dict,
                                            media_dir: Path) -> None:
    video = await upload(client, headers, media_dir / "b.mp4")
    steps = [text_step("s0", video)] + [text_step(f"s{n}", f"@s{n - 1}") for n in range(1, 21)]
    [error] = await refused(client, headers, {"type": "combined", "params": {"steps": steps}})
    assert (error["loc"], error["type"]) == (STEPS, "too_long")
    twenty = {"type": "combined", "params": {"steps": steps[:20]}}  # the limit itself is fine
    plan = (await client.post("/api/v1/jobs/validate", headers=headers, json=twenty)).json()
    assert len(plan["plan"]) == 1 and plan["plan"][0]["op"] == "fused:20 steps"


async def test_an_audio_only_output_is_not_a_video(client: httpx.AsyncClient, headers: dict,
                                                   media_dir: Path) -> None:
    video = await upload(client, headers, media_dir / "b.mp4")
    tone = await upload(client, headers, media_dir / "tone.wav")
    spec = {"type": "combined",
            "params": {"steps": [
                {"id": "mixed", "type": "audio_overlay", "params": {"video": video,
                                                                    "audio": tone}},
                text_step("titled", "@mixed")],
                "outputs": ["mixed", "titled"]},
            "output": {"container": "m4a"}}
    detail = await refused(client, headers, spec)
    assert [(d["loc"], d["type"]) for d in detail] == [
        ([*STEPS, 1, "params", "video"], "ref_kind")], detail
    # used where audio is accepted, the same audio-only output is fine
    spec["params"]["steps"][1] = {"id": "titled", "type": "audio_overlay",
                                  "params": {"video": video, "audio": "@mixed"}}
    response = await client.post("/api/v1/jobs/validate", headers=headers, json=spec)
    assert response.status_code == 200, response.text


async def test_a_subtitle_file_is_not_a_video(client: httpx.AsyncClient, headers: dict,
                                              tmp_path: Path) -> None:
    path = tmp_path / "subs.srt"
    path.write_text(SRT)
    subs = await upload(client, headers, path)
    detail = await refused(client, headers, {"type": "text_overlay",
                                             "params": {"video": subs, "text": "x"}})
    assert [(d["loc"], d["type"]) for d in detail] == [(["body", "params", "video"],
                                                        "file_kind")]
    detail = await refused(client, headers, {"type": "combined", "params": {"steps": [
        {"id": "j", "type": "join", "params": {"inputs": [subs, subs]}}]}})
    assert [(d["loc"], d["type"]) for d in detail] == [
        ([*STEPS, 0, "params", "inputs", 0], "file_kind"),
        ([*STEPS, 0, "params", "inputs", 1], "file_kind")]
    detail = await refused(client, headers, {"type": "subtitles",
                                             "params": {"video": subs, "subtitles": subs}})
    assert [(d["loc"], d["type"]) for d in detail] == [(["body", "params", "video"],
                                                        "file_kind")]


async def test_a_foreign_subtitle_file_is_404_not_422(client: httpx.AsyncClient,
                                                      headers: dict, tmp_path: Path,
                                                      media_dir: Path) -> None:
    path = tmp_path / "subs.srt"
    path.write_text(SRT)
    theirs = await upload(client, await new_user_headers(client), path)
    video = await upload(client, headers, media_dir / "b.mp4")
    response = await client.post("/api/v1/jobs", headers=headers, json={
        "type": "subtitles", "params": {"video": video, "subtitles": theirs}})
    assert response.status_code == 404, response.text
