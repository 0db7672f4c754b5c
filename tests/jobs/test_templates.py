"""Job templates end to end (docs/API.md, "Templates"): saved with typed variables, run
twice with different values through real workers and ffmpeg, refused with the path of
what is wrong, and scoped like every other resource (private ones are 404 to others,
public ones run for everyone and are read-only to them)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from tests.utils.jobs import download, upload, wait_for
from tests.utils.media import SRT, duration, ffprobe
from tests.utils.users import new_user_headers

pytestmark = pytest.mark.usefixtures("worker")

CLIP = {
    "type": "trim",
    "params": {"input": "{{video}}", "start": 0, "duration": "{{seconds}}"},
    "output": {"width": "{{width}}", "filename": "{{label}}-clip.mp4"},
}
CLIP_VARIABLES = {
    "video": {"type": "file", "description": "the video to cut"},
    "seconds": {"type": "number", "default": 1},
    "width": {"type": "number"},
    "label": {"type": "string", "default": "clip"},
}


def name() -> str:
    return f"clip-{uuid.uuid4().hex[:8]}"


async def create(client: httpx.AsyncClient, headers: dict, spec: dict, variables: dict,
                 **extra: object) -> httpx.Response:
    return await client.post("/api/v1/templates", headers=headers, json={
        "name": extra.pop("name", None) or name(), "spec": spec, "variables": variables,
        **extra})


def locs(response: httpx.Response) -> list[tuple[list, str]]:
    assert response.status_code == 422, response.text
    return [(item["loc"], item["type"]) for item in response.json()["detail"]]


async def test_a_template_runs_twice_with_different_values(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, tmp_path: Path
) -> None:
    small = await upload(client, headers, media_dir / "a.mp4")   # 2 s, 320x240
    wide = await upload(client, headers, media_dir / "wide.mp4")  # 1 s, 640x360
    created = await create(client, headers, CLIP, CLIP_VARIABLES, description="cut and size")
    assert created.status_code == 201, created.text
    template = created.json()
    assert template["public"] is False and template["variables"]["seconds"]["default"] == 1

    first = await client.post("/api/v1/jobs", headers=headers, json={
        "template": template["name"],
        "variables": {"video": small, "seconds": 1.5, "width": 160, "label": "first"}})
    second = await client.post("/api/v1/jobs", headers=headers, json={
        "template": template["id"], "variables": {"video": wide, "width": 320.0},
        "priority": 2})
    assert first.status_code == second.status_code == 202, (first.text, second.text)

    outputs = []
    for job in (first.json(), second.json()):
        done = await wait_for(client, headers, job["id"])
        assert done["status"] == "completed", done
        assert done["template_id"] == template["id"]
        outputs.append(done)
    one, two = outputs
    # the stored spec is the expanded one: typed values, interpolated strings
    assert one["spec"]["params"]["input"] == small and one["spec"]["params"]["duration"] == 1.5
    assert one["spec"]["output"]["width"] == 160 and two["spec"]["output"]["width"] == 320
    assert two["spec"]["params"]["duration"] == 1 and two["priority"] == 2

    probes = []
    for done, target in zip(outputs, ("one.mp4", "two.mp4"), strict=True):
        meta = (await client.get(f"/api/v1/files/{done['output_files'][0]}",
                                 headers=headers)).json()
        probes.append((meta["filename"], ffprobe(await download(
            client, headers, done["output_files"][0], tmp_path / target))))
    (name_one, probe_one), (name_two, probe_two) = probes
    assert name_one == "first-clip.mp4" and name_two == "clip-clip.mp4"
    video_one = next(s for s in probe_one["streams"] if s["codec_type"] == "video")
    video_two = next(s for s in probe_two["streams"] if s["codec_type"] == "video")
    assert (video_one["width"], video_one["height"]) == (160, 120)
    assert (video_two["width"], video_two["height"]) == (320, 180)
    assert duration(probe_one) == pytest.approx(1.5, abs=0.1)
    assert duration(probe_two) == pytest.approx(1.0, abs=0.1)


async def test_validate_shows_the_expanded_spec(
    client: httpx.AsyncClient, headers: dict, media_dir: Path
) -> None:
    video = await upload(client, headers, media_dir / "a.mp4")
    template = (await create(client, headers, CLIP, CLIP_VARIABLES)).json()
    shown = await client.post("/api/v1/jobs/validate", headers=headers, json={
        "template": template["name"], "variables": {"video": video, "width": 64}})
    assert shown.status_code == 200, shown.text
    plan = shown.json()
    assert plan["valid"] and plan["spec"]["params"]["input"] == video
    assert plan["spec"]["output"]["width"] == 64 and plan["spec"]["priority"] == 3
    assert plan["spec"]["output"]["filename"] == "clip-clip.mp4"
    assert plan["plan"][0]["op"] == "trim"


@pytest.mark.parametrize(("spec", "variables", "expected"), [
    pytest.param({**CLIP, "params": {**CLIP["params"], "input": "{{clip}}"}}, CLIP_VARIABLES,
                 [(["body", "spec", "params", "input"], "unknown_variable"),
                  (["body", "variables", "video"], "unused_variable")], id="unknown+unused"),
    pytest.param(CLIP, {**CLIP_VARIABLES, "extra": {"type": "string"}},
                 [(["body", "variables", "extra"], "unused_variable")], id="unused"),
    pytest.param({**CLIP, "output": {"width": "{{width}}", "filename": "{{seconds}}s.mp4"}},
                 CLIP_VARIABLES, [(["body", "spec", "output", "filename"], "variable_inline"),
                                  (["body", "variables", "label"], "unused_variable")],
                 id="number-inside-a-string"),
    pytest.param({**CLIP, "params": {**CLIP["params"], "fontfile": "/etc/passwd"}},
                 CLIP_VARIABLES, [(["body", "spec", "params", "fontfile"], "spec_invalid")],
                 id="never-valid-field"),
    pytest.param({"type": "text_overlay", "params": {"video": "{{video}}", "text": "{{size}}"}},
                 {"video": {"type": "file"}, "size": {"type": "number"}},
                 [(["body", "spec", "params", "text"], "variable_type")], id="number-as-text"),
    pytest.param({"type": "text_overlay", "params": {"video": "{{video}}", "text": "{{other}}"}},
                 {"video": {"type": "file"}, "other": {"type": "file"}},
                 [(["body", "spec", "params", "text"], "variable_place")], id="file-as-text"),
    pytest.param({"type": "text_overlay", "params": {"video": "{{name}}", "text": "hi"}},
                 {"name": {"type": "string"}},
                 [(["body", "spec", "params", "video"], "variable_place")],
                 id="string-as-media"),
    pytest.param({"type": "no_such_type", "params": {}}, {},
                 [(["body", "spec", "type"], "spec_invalid")], id="never-valid-type"),
    pytest.param(CLIP, {**CLIP_VARIABLES, "width": {"type": "number", "default": "wide"}},
                 [(["body", "variables", "width"], "variable_default")], id="bad-default"),
    pytest.param({"type": "transcode", "params": {"input": "{{video}}"}},
                 {"video": {"type": "file"}, "Bad-Name": {"type": "string"}},
                 [(["body", "variables", "Bad-Name", "[key]"], "variable_name")],
                 id="bad-variable-name"),
    pytest.param({"type": "transcode", "params": {"input": str(uuid.uuid4())}}, {},
                 [(["body", "spec", "params", "input"], "file_not_found")],
                 id="someone-elses-file"),
])
async def test_templates_that_could_never_run_are_refused_with_their_path(
    client: httpx.AsyncClient, headers: dict, spec: dict, variables: dict,
    expected: list
) -> None:
    assert sorted(locs(await create(client, headers, spec, variables))) == sorted(expected)


async def test_names_are_checked_and_unique_per_owner(
    client: httpx.AsyncClient, headers: dict, media_dir: Path
) -> None:
    for bad in ("ab", "Upper", "under_score", "x" * 65, str(uuid.uuid4())):
        response = await create(client, headers, CLIP, CLIP_VARIABLES, name=bad)
        assert (["body", "name"], "template_name") in locs(response) or \
            ["body", "name"] in [loc for loc, _ in locs(response)], bad
    taken = name()
    assert (await create(client, headers, CLIP, CLIP_VARIABLES, name=taken)).status_code == 201
    again = await create(client, headers, CLIP, CLIP_VARIABLES, name=taken)
    assert again.status_code == 409, again.text
    other = await new_user_headers(client)  # another owner may use the same name
    assert (await create(client, other, CLIP, CLIP_VARIABLES, name=taken)).status_code == 201


async def test_uses_with_missing_or_mistyped_values_are_422_naming_the_variable(
    client: httpx.AsyncClient, headers: dict, media_dir: Path, tmp_path: Path
) -> None:
    video = await upload(client, headers, media_dir / "a.mp4")
    (tmp_path / "words.srt").write_text(SRT)
    words = await upload(client, headers, tmp_path / "words.srt")
    template = (await create(client, headers, CLIP, CLIP_VARIABLES)).json()

    async def run(variables: dict) -> httpx.Response:
        return await client.post("/api/v1/jobs", headers=headers, json={
            "template": template["id"], "variables": variables})

    assert locs(await run({"video": video})) == [(["body", "variables", "width"], "missing")]
    assert locs(await run({"video": video, "width": "160"})) == [
        (["body", "variables", "width"], "variable_type")]
    assert locs(await run({"video": "not-an-id", "width": 160})) == [
        (["body", "variables", "video"], "variable_type")]
    assert locs(await run({"video": video, "width": 160, "colour": "red"})) == [
        (["body", "variables", "colour"], "unknown_variable")]
    odd = await run({"video": video, "width": 161})
    assert [loc for loc, _ in locs(odd)] == [["body", "variables", "width"]]
    assert "output.width" in odd.json()["detail"][0]["msg"]
    assert [loc for loc, _ in locs(await run({"video": words, "width": 160}))] == [
        ["body", "variables", "video"]]  # subtitles where a video is needed
    foreign = await upload(client, await new_user_headers(client), media_dir / "a.mp4")
    assert (await run({"video": foreign, "width": 160})).status_code == 404
    bad_type = await client.post("/api/v1/jobs", headers=headers, json={
        "template": template["id"], "variables": {"video": video, "width": 160},
        "priority": 9})
    assert [loc for loc, _ in locs(bad_type)] == [["body", "priority"]]
    assert (await client.post("/api/v1/jobs", headers=headers, json={
        "template": "no-such-template", "variables": {}})).status_code == 404


async def test_private_templates_are_404_to_others_and_public_ones_run_for_everyone(
    client: httpx.AsyncClient, headers: dict, media_dir: Path
) -> None:
    mine = (await create(client, headers, CLIP, CLIP_VARIABLES)).json()
    other = await new_user_headers(client)
    for method in ("GET", "PUT", "DELETE"):
        response = await client.request(method, f"/api/v1/templates/{mine['id']}",
                                        headers=other, json={
                                            "name": "taken-over", "spec": CLIP,
                                            "variables": CLIP_VARIABLES})
        assert response.status_code == 404, (method, response.text)
    video = await upload(client, other, media_dir / "a.mp4")
    for ref in (mine["id"], mine["name"]):
        assert (await client.post("/api/v1/jobs", headers=other, json={
            "template": ref, "variables": {"video": video, "width": 160}})).status_code == 404
    listed = (await client.get("/api/v1/templates?limit=200", headers=other)).json()
    assert mine["id"] not in [t["id"] for t in listed["items"]]

    refused = await create(client, other, CLIP, CLIP_VARIABLES, public=True)
    assert refused.status_code == 403, refused.text

    admin = await new_user_headers(client, superuser=True)
    hooked = await create(client, admin, {**CLIP, "webhook": {
        "url": "https://hooks.example.com/x", "secret": "s3cret"}}, CLIP_VARIABLES,
        public=True, name=f"hooked-{uuid.uuid4().hex[:8]}")
    assert hooked.status_code == 422, hooked.text  # every user could read its secret
    assert hooked.json()["detail"][0]["loc"] == ["body", "spec", "webhook"]
    preset = await create(client, admin, CLIP, CLIP_VARIABLES, public=True,
                          name=f"house-{uuid.uuid4().hex[:8]}")
    assert preset.status_code == 201, preset.text
    house = preset.json()
    assert house["public"] is True
    listed = (await client.get("/api/v1/templates?public=true&limit=200",
                               headers=other)).json()
    assert house["id"] in [t["id"] for t in listed["items"]]
    assert (await client.get(f"/api/v1/templates/{house['name']}", headers=other)).json()[
        "id"] == house["id"]
    job = await client.post("/api/v1/jobs", headers=other, json={
        "template": house["name"], "variables": {"video": video, "width": 96}})
    assert job.status_code == 202, job.text
    assert (await wait_for(client, other, job.json()["id"]))["status"] == "completed"

    changed = {"name": house["name"], "spec": CLIP, "variables": CLIP_VARIABLES,
               "description": "mine now"}
    assert (await client.put(f"/api/v1/templates/{house['id']}", headers=other,
                             json=changed)).status_code == 403
    assert (await client.delete(f"/api/v1/templates/{house['id']}",
                                headers=other)).status_code == 403
    kept = (await client.get(f"/api/v1/templates/{house['id']}", headers=other)).json()
    assert kept["description"] == "" and kept["public"] is True

    # the owner changes and deletes their own
    renamed = await client.put(f"/api/v1/templates/{mine['id']}", headers=headers, json={
        "name": "renamed-clip", "spec": CLIP, "variables": CLIP_VARIABLES,
        "description": "v2"})
    assert renamed.status_code == 200 and renamed.json()["description"] == "v2"
    assert (await client.delete(f"/api/v1/templates/{mine['id']}",
                                headers=headers)).status_code == 204
    assert (await client.get(f"/api/v1/templates/{mine['id']}",
                             headers=headers)).status_code == 404
