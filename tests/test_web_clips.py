"""Serving evidence: /api/clips, the clip files with HTTP Range, the tokens, privacy, and the page's Review
list in headless Chromium (a <video> loads a clip and seeks).

The clips are made here with Debian's ffmpeg (an H.264 faststart mp4, a JPEG, a WebVTT and the sidecar
of ``edge.evidence``'s contract), so these tests do not depend on the evidence writer.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edge.config import config_from_mapping
from edge.evidence.store import ClipStore
from edge.web import app as web
from edge.web.app import byte_range, create_app
from support_web import CHROMIUM, HeadlessChromium, ServiceDouble, check_record, raw_get, scene, serving

FFMPEG = shutil.which("ffmpeg")
TOKEN = "clips-token"
CLIP_S = 4.0
VTT = "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nwashing hands 91%\n\n00:00:02.000 --> 00:00:04.000\nnone\n"
# (camera, id, rule, activity, passed, wall_time)
CLIPS = [
    ("sink", "run1-wash-20s-1", "wash-20s", "handwash", False, "2026-11-28T08:00:01.000Z"),
    ("sink", "run1-wash-20s-2", "wash-20s", "handwash", True, "2026-11-28T08:05:00.000Z"),
    ("kitchen", "run1-no-smoking-1", "no-smoking", "smoking", False, "2026-11-28T08:10:00.000Z"),
    ("kitchen", "run1-act-7", None, "food_prep", None, "2026-11-28T08:20:00.000Z"),
]


def make_mp4(path: Path, seconds: float = CLIP_S) -> Path:
    """An H.264 faststart mp4 (320x240, 25 fps, a keyframe every second)."""
    subprocess.run([FFMPEG, "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=320x240:rate=25", "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast",
                    "-g", "25", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(path)], check=True, timeout=60)
    return path


@pytest.fixture(scope="module")
def mp4(tmp_path_factory):
    if FFMPEG is None:
        pytest.skip("needs the ffmpeg command (Debian package ffmpeg)")
    return make_mp4(tmp_path_factory.mktemp("clip") / "clip.mp4")


def write_clip(folder: Path, camera, clip_id, rule, activity, passed, wall_time, mp4: Path) -> dict:
    """The four files of one clip under ``folder`` (a camera's evidence.dir), as the contract names them."""
    day = folder / wall_time[:10]
    day.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(mp4, day / f"{clip_id}.mp4")
    import cv2

    cv2.imwrite(str(day / f"{clip_id}.jpg"), scene(len(clip_id)))
    (day / f"{clip_id}.vtt").write_text(VTT, encoding="utf-8")
    sidecar = {"id": clip_id, "camera": camera, "rule": rule, "activity": activity, "passed": passed,
               "start_s": 10.0, "end_s": 10.0 + CLIP_S, "wall_time": wall_time,
               "clip": f"{wall_time[:10]}/{clip_id}.mp4", "snapshot": f"{wall_time[:10]}/{clip_id}.jpg",
               "vtt": f"{wall_time[:10]}/{clip_id}.vtt"}
    (day / f"{clip_id}.json").write_text(json.dumps(sidecar), encoding="utf-8")
    return sidecar


@pytest.fixture
def evidence(tmp_path, mp4):
    """Two cameras' evidence folders holding CLIPS, and a third camera whose pictures are off."""
    dirs = {name: tmp_path / "clips" / name for name in ("sink", "kitchen", "office")}
    for camera, clip_id, rule, activity, passed, wall_time in CLIPS:
        write_clip(dirs[camera], camera, clip_id, rule, activity, passed, wall_time, mp4)
    # Files left from before the office's pictures were turned off: never listed, never served.
    write_clip(dirs["office"], "office", "old-1", "wash-20s", "handwash", False, "2026-11-27T08:00:00.000Z", mp4)
    return dirs


@pytest.fixture
def service(evidence):
    """A service double with a real config: sink and kitchen keep pictures, office does not."""
    service = ServiceDouble(("sink", "kitchen", "office"))
    cameras = {name: {"source": f"{name}.mp4", "evidence": {"dir": str(folder)}}
               for name, folder in evidence.items()}
    cameras["office"]["privacy"] = {"pictures": False}
    service.config = config_from_mapping({"cameras": cameras})
    return service


@pytest.fixture
def client(service):
    with TestClient(create_app(service)) as client:
        yield client


def ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()]


# -- /api/clips ------------------------------------------------------------------------------------

def test_clips_are_listed_newest_first_with_urls(client):
    items = client.get("/api/clips").json()
    assert [item["id"] for item in items] == [clip[1] for clip in reversed(CLIPS)]
    first = items[-1]
    assert first == {"id": "run1-wash-20s-1", "camera": "sink", "rule": "wash-20s", "activity": "handwash",
                     "passed": False, "start_s": 10.0, "end_s": 14.0, "wall_time": "2026-11-28T08:00:01.000Z",
                     "clip_url": "/clips/sink/2026-11-28/run1-wash-20s-1.mp4",
                     "snapshot_url": "/clips/sink/2026-11-28/run1-wash-20s-1.jpg",
                     "vtt_url": "/clips/sink/2026-11-28/run1-wash-20s-1.vtt"}
    for item in items:  # every URL it gives is served
        for key in ("clip_url", "snapshot_url", "vtt_url"):
            assert client.get(item[key]).status_code == 200


def test_clips_filters(client):
    assert ids(client.get("/api/clips", params={"camera": "sink"})) == ["run1-wash-20s-2", "run1-wash-20s-1"]
    assert ids(client.get("/api/clips", params={"rule": "wash-20s"})) == ["run1-wash-20s-2", "run1-wash-20s-1"]
    assert ids(client.get("/api/clips", params={"passed": "false"})) == ["run1-no-smoking-1", "run1-wash-20s-1"]
    assert ids(client.get("/api/clips", params={"passed": "true"})) == ["run1-wash-20s-2"]
    assert ids(client.get("/api/clips", params={"camera": "kitchen", "passed": "false"})) == ["run1-no-smoking-1"]
    # since: ISO or Unix seconds, inclusive
    assert ids(client.get("/api/clips", params={"since": "2026-11-28T08:05:00Z"})) == \
        ["run1-act-7", "run1-no-smoking-1", "run1-wash-20s-2"]
    assert ids(client.get("/api/clips", params={"since": "1795824000"})) == \
        ids(client.get("/api/clips", params={"since": "2026-11-28T08:00:00Z"}))
    assert ids(client.get("/api/clips", params={"since": "2026-11-29T00:00:00"})) == []
    assert ids(client.get("/api/clips", params={"limit": 2})) == ["run1-act-7", "run1-no-smoking-1"]
    assert ids(client.get("/api/clips", params={"camera": "nope"})) == []


@pytest.mark.parametrize("query", [{"limit": 0}, {"limit": 1001}, {"passed": "maybe"}, {"since": "yesterday"},
                                   {"camera": "../etc"}])
def test_bad_clip_queries_are_client_errors(client, query):
    assert client.get("/api/clips", params=query).status_code == 422


def test_a_new_clip_is_listed_and_a_deleted_one_goes(client, evidence, mp4):
    write_clip(evidence["sink"], "sink", "run2-wash-20s-1", "wash-20s", "handwash", False,
               "2026-11-28T09:00:00.000Z", mp4)
    assert ids(client.get("/api/clips", params={"camera": "sink"}))[0] == "run2-wash-20s-1"
    for path in (evidence["sink"] / "2026-11-28").glob("run1-wash-20s-2.*"):
        path.unlink()
    assert "run1-wash-20s-2" not in ids(client.get("/api/clips"))
    assert client.get("/clips/sink/2026-11-28/run1-wash-20s-2.mp4").status_code == 404


def test_a_torn_sidecar_is_skipped(client, evidence):
    (evidence["sink"] / "2026-11-28" / "torn.json").write_text('{"id": "torn", "cam', encoding="utf-8")
    assert "torn" not in ids(client.get("/api/clips"))


# -- the files, with Range ------------------------------------------------------------------------------

CLIP_URL = "/clips/sink/2026-11-28/run1-wash-20s-1.mp4"


def test_a_clip_is_served_whole_with_accept_ranges(client, mp4):
    response = client.get(CLIP_URL)
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.content == mp4.read_bytes()
    assert client.get(CLIP_URL.replace(".mp4", ".jpg")).headers["content-type"] == "image/jpeg"
    vtt = client.get(CLIP_URL.replace(".mp4", ".vtt"))
    assert vtt.headers["content-type"].startswith("text/vtt") and vtt.text == VTT


@pytest.mark.parametrize("header, first, last", [("bytes=0-99", 0, 99), ("bytes=100-", 100, None),
                                                 ("bytes=-50", -50, None), ("bytes=1000-1999", 1000, 1999),
                                                 ("bytes=0-999999999", 0, None)])
def test_range_requests_get_206_and_the_right_bytes(client, mp4, header, first, last):
    data = mp4.read_bytes()
    size = len(data)
    first = first % size
    last = size - 1 if last is None else last
    response = client.get(CLIP_URL, headers={"Range": header})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {first}-{last}/{size}"
    assert response.headers["accept-ranges"] == "bytes"
    assert int(response.headers["content-length"]) == last - first + 1
    assert response.content == data[first:last + 1]


@pytest.mark.parametrize("header", ["bytes=999999999-", "bytes=-0", "bytes=999999999-1000000000"])
def test_a_range_past_the_end_is_416(client, mp4, header):
    response = client.get(CLIP_URL, headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{mp4.stat().st_size}"


@pytest.mark.parametrize("header", ["items=0-10", "bytes=5-1", "bytes=0-1,5-9", "bytes=x-", "bytes=-"])
def test_a_range_this_server_ignores_gets_the_whole_file(client, mp4, header):
    response = client.get(CLIP_URL, headers={"Range": header})
    assert response.status_code == 200 and response.content == mp4.read_bytes()


def test_byte_range_arithmetic():
    assert byte_range(None, 10) is None
    assert byte_range("bytes=0-0", 10) == (0, 0)
    assert byte_range("bytes=9-", 10) == (9, 9)
    assert byte_range("bytes=-20", 10) == (0, 9)
    with pytest.raises(ValueError):
        byte_range("bytes=10-", 10)
    with pytest.raises(ValueError):
        byte_range("bytes=-5", 0)


def test_only_clip_files_inside_the_cameras_folder_are_served(service, evidence):
    (evidence["sink"].parent / "outside.mp4").write_bytes(b"outside")
    paths = ["/clips/sink/2026-11-28/run1-wash-20s-1.json", "/clips/sink/2026-11-28/nope.mp4",
             "/clips/sink/../kitchen/2026-11-28/run1-no-smoking-1.mp4", "/clips/sink/../outside.mp4",
             "/clips/sink/2026-11-28/..%2F..%2Fkitchen%2F2026-11-28%2Frun1-no-smoking-1.mp4",
             "/clips/sink/..%2Foutside.mp4", "/clips/sink/%2e%2e/outside.mp4", "/clips/sink/..%5Coutside.mp4",
             "/clips/nope/2026-11-28/run1-wash-20s-1.mp4", "/clips/sink/", "/clips/sink/%2Fetc%2Fpasswd",
             "/clips/sink/2026-11-28/run1-wash-20s-1.mp4%00.jpg", "/clips/..%2Fclips%2Fsink/2026-11-28/x.mp4"]
    with serving(service) as server:
        for path in paths:
            status, data = raw_get(server.url, path)
            assert status in (400, 404), (path, data[:200])
            assert b"outside" not in data and b"ftyp" not in data, path


def test_a_symlink_out_of_the_folder_is_not_followed(client, evidence, tmp_path):
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"not for you")
    (evidence["sink"] / "2026-11-28" / "link.jpg").symlink_to(secret)
    assert client.get("/clips/sink/2026-11-28/link.jpg").status_code == 404


# -- tokens and privacy ----------------------------------------------------------------------------------

def test_clips_need_the_token_like_every_endpoint(service):
    with TestClient(create_app(service, token=TOKEN)) as client:
        for path in ("/api/clips", CLIP_URL):
            assert client.get(path).status_code == 401
            assert client.get(path, params={"token": "wrong"}).status_code == 401
            assert client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
            assert client.get(path, params={"token": TOKEN}).status_code == 200
        ranged = client.get(CLIP_URL, params={"token": TOKEN}, headers={"Range": "bytes=0-9"})
        assert ranged.status_code == 206 and len(ranged.content) == 10


def test_a_camera_without_pictures_lists_nothing_and_serves_nothing(service, client):
    reason = "privacy.pictures is false for camera office"
    assert all(item["camera"] != "office" for item in client.get("/api/clips").json())
    assert client.get("/api/clips", params={"camera": "office"}).json() == []
    service.hubs["office"].publish(scene(1))  # even if a frame reached its hub, it is not served
    for path in ("/clips/office/2026-11-27/old-1.mp4", "/clips/office/2026-11-27/old-1.jpg",
                 "/clips/office/2026-11-27/old-1.vtt", "/cameras/office/snapshot.jpg", "/cameras/office/mjpeg"):
        response = client.get(path, headers={"Range": "bytes=0-"})
        assert response.status_code == 403, path
        assert response.json()["detail"] == reason
    assert client.get("/cameras/sink/snapshot.jpg").status_code == 503  # others still serve (no frame yet)


# -- the page in Chromium ---------------------------------------------------------------------------------

class RangeLog:
    """ASGI middleware: every request's path, Range header and status, as the server answered them."""

    def __init__(self, app, served: list) -> None:
        self.app, self.served = app, served

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        asked = dict(scope["headers"]).get(b"range", b"").decode()

        async def answer(message):
            if message["type"] == "http.response.start":
                self.served.append((scope["path"], asked, message["status"]))
            await send(message)

        await self.app(scope, receive, answer)


@pytest.fixture
def served(monkeypatch):
    served: list = []
    real = web.create_app

    def logged(*args, **kwargs):
        app = real(*args, **kwargs)
        app.add_middleware(RangeLog, served=served)
        return app

    monkeypatch.setattr(web, "create_app", logged)
    return served


REVIEW_SHOWN = ("document.querySelectorAll('#review .clip').length === 4 && "
                "Array.from(document.querySelectorAll('#review .clip img')).every(img => img.naturalWidth > 0)")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_review_lists_failed_checks_first_and_plays_a_clip_that_seeks(service, served):
    for name in ("sink", "kitchen"):
        service.hubs[name].publish(scene(3))
    service.cameras["office"]["pictures"] = False  # as the lane says it
    service.emit("check", "sink", check_record("sink", "wash-20s", False, reason="washed 12.5 s, needs 20 s"))
    with serving(service, token=TOKEN) as server, HeadlessChromium() as browser:
        browser.open(f"{server.url}/?token={TOKEN}").wait_for(REVIEW_SHOWN)
        entries = browser.evaluate("Array.from(document.querySelectorAll('#review .clip'))"
                                   ".map(li => [li.className, li.dataset.id])")
        # Failed checks first, then the newest.
        assert entries == [["clip failed", "run1-no-smoking-1"], ["clip failed", "run1-wash-20s-1"],
                           ["clip activity", "run1-act-7"], ["clip passed", "run1-wash-20s-2"]]
        snapshots = browser.evaluate("Array.from(document.querySelectorAll('#review .clip img'))"
                                     ".map(img => img.getAttribute('src'))")
        assert snapshots[1] == f"/clips/sink/2026-11-28/run1-wash-20s-1.jpg?token={TOKEN}"
        # The camera without pictures has no live image on the page, and nothing of it was asked for.
        assert browser.evaluate("document.querySelector('#camera-office img') === null && "
                                "document.querySelector('#camera-office .no-pictures') !== null")

        browser.evaluate("document.querySelector('#review .clip[data-id=\"run1-wash-20s-1\"]').click()")
        duration = browser.wait_for("(() => { const v = document.getElementById('player');"
                                    " return !v.hidden && v.readyState >= 1 && v.duration > 0 && v.duration; })()")
        assert duration == pytest.approx(CLIP_S, abs=0.1)
        assert browser.evaluate("document.getElementById('player').getAttribute('src')") == \
            f"{CLIP_URL}?token={TOKEN}"
        # The labels are its text track, loaded from the .vtt.
        cues = browser.wait_for("(() => { const t = document.getElementById('player').textTracks[0];"
                                " return t && t.cues && t.cues.length && Array.from(t.cues).map(c => c.text); })()")
        assert cues == ["washing hands 91%", "none"]
        # It seeks: the browser knows the whole clip is seekable (it is, only because ranges are answered).
        assert browser.evaluate("(() => { const s = document.getElementById('player').seekable;"
                                " return s.length === 1 && s.start(0) === 0 && s.end(0); })()") == \
            pytest.approx(CLIP_S, abs=0.1)
        browser.evaluate("(() => { const v = document.getElementById('player'); v.pause(); v.currentTime = 3.0; })()")
        browser.wait_for("(() => { const v = document.getElementById('player');"
                         " return !v.seeking && Math.abs(v.currentTime - 3.0) < 0.05 && v.readyState >= 2; })()")
    clip_requests = [(asked, status) for path, asked, status in served if path == CLIP_URL]
    assert clip_requests and all(status == 206 for asked, status in clip_requests if asked), clip_requests
    assert any(asked.startswith("bytes=") and status == 206 for asked, status in clip_requests), clip_requests
    assert not [path for path, _, _ in served if "office" in path]


def test_the_real_service_serves_its_cameras_clips(tmp_path, mp4):
    """Without an explicit store, the app lists the evidence.dir of the service's config."""
    from edge.engine.service import Service

    config = config_from_mapping({"cameras": {"sink": {"source": "sink.mp4",
                                                       "evidence": {"dir": str(tmp_path / "{camera}")}}}})
    write_clip(tmp_path / "sink", "sink", "r-1", "wash-20s", "handwash", False, "2026-11-28T08:00:00.000Z", mp4)
    with TestClient(create_app(Service(config, mode="serve"))) as client:
        assert ids(client.get("/api/clips")) == ["r-1"]
        assert client.get("/clips/sink/2026-11-28/r-1.mp4", headers={"Range": "bytes=0-3"}).status_code == 206
    assert isinstance(web.clip_store_of(Service(config, mode="serve")), ClipStore)
