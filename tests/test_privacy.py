"""Privacy: masks filled black in everything served or stored (live view, snapshot, annotated video, the
model's input with mask_inference), the one-line config errors, and ``privacy.pictures: false`` tried on
every path of a full ``edge-har serve`` (a file camera and a live ffmpeg stream): no image or video file
anywhere, every picture endpoint refuses.

Oracles: pixels read back from what was served or written (decoded JPEG, decoded video) against the
polygon's own geometry; the colour test model (a red clip is "washing hands" ≥ 0.9, a black one is flat).
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import yaml
from support_activities import (  # noqa: F401
    ACTIVITIES_YAML,
    colour_model_xml,
    oracle_probabilities,
    script_video,
)
from support_config import error_of
from support_evidence import Serving, environment
from support_web import MjpegReader, decode_jpeg, free_port

from edge.config import config_from_yaml
from edge.privacy import Masks
from edge.sinks.video import video_image_from_planes

# A quadrilateral away from the overlay (top left): x 55-95 %, y 50-95 % of the picture.
QUAD = [[0.55, 0.5], [0.95, 0.5], [0.95, 0.95], [0.55, 0.95]]
TRIANGLE = [[0.1, 0.9], [0.3, 0.6], [0.45, 0.9]]
PICTURE_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".ts", ".m4s", ".webm", ".h264", ".264", ".jpg", ".jpeg",
                    ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".y4m", ".yuv", ".raw"}


@functools.lru_cache(maxsize=64)
def _distances(polygon: tuple, width: int, height: int) -> np.ndarray:
    """Signed distance (px, positive inside) of every pixel centre to ``polygon`` (0-1 coordinates): the
    oracle is cv2.pointPolygonTest on the polygon in pixels, not the fillPoly the masks use."""
    contour = (np.asarray(polygon, np.float32) * np.float32([width - 1, height - 1])).reshape(-1, 1, 2)
    return np.array([[cv2.pointPolygonTest(contour, (float(x), float(y)), True) for x in range(width)]
                     for y in range(height)])


def inside(polygon, width: int, height: int, margin: float) -> np.ndarray:
    """Pixels whose centre is at least ``margin`` px inside ``polygon``."""
    return _distances(tuple(map(tuple, polygon)), width, height) >= margin


def outside(polygon, width: int, height: int, margin: float) -> np.ndarray:
    """Pixels whose centre is at least ``margin`` px outside ``polygon``."""
    return _distances(tuple(map(tuple, polygon)), width, height) <= -margin


# -- Masks ---------------------------------------------------------------------------------------------

def test_masks_fill_their_polygons_black_in_place_and_nothing_else(frames_factory):
    image = frames_factory(160, 120, 1)[0]
    image[image < 40] = 40  # nothing black to start with
    original = image.copy()
    masks = Masks([QUAD, TRIANGLE])
    assert masks.apply(image) is image
    for polygon in (QUAD, TRIANGLE):
        assert image[inside(polygon, 160, 120, 0.5)].max() == 0
    untouched = outside(QUAD, 160, 120, 1.0) & outside(TRIANGLE, 160, 120, 1.0)
    assert np.array_equal(image[untouched], original[untouched])


def test_masks_scale_to_every_picture_size(frames_factory):
    masks = Masks([QUAD])
    for width, height in ((64, 48), (320, 180), (97, 61), (64, 48)):
        image = np.full((height, width, 3), 200, np.uint8)
        masks.apply(image)
        assert image[inside(QUAD, width, height, 0.5)].max() == 0
        assert image[outside(QUAD, width, height, 1.0)].min() == 200
        black = (image.max(axis=2) == 0).mean()
        assert black == pytest.approx(0.4 * 0.45, abs=0.06)  # the quad's share of the picture
    assert set(masks._scaled) == {(64, 48), (320, 180), (97, 61)}  # one scaling per size


def test_a_mask_over_the_whole_range_covers_every_pixel():
    image = np.full((7, 9, 3), 255, np.uint8)
    Masks([[[0, 0], [1, 0], [1, 1], [0, 1]]]).apply(image)
    assert image.max() == 0


def test_no_masks_is_falsy_and_leaves_the_picture_alone():
    masks = Masks(())
    image = np.full((10, 10, 3), 99, np.uint8)
    assert not masks and masks.apply(image) is image and image.min() == 99
    planes = (np.full((10, 10), 99, np.uint8), np.full((5, 5), 99, np.uint8), np.full((5, 5), 99, np.uint8))
    assert all(plane.min() == 99 for plane in masks.apply_planes(*planes))


def test_masks_refuse_what_they_cannot_fill():
    masks = Masks([QUAD])
    with pytest.raises(ValueError):
        masks.apply(np.zeros((10, 10, 3), np.float32))
    frozen = np.zeros((10, 10, 3), np.uint8)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        masks.apply(frozen)


def test_masked_planes_are_copies_and_black_once_converted(frames_factory):
    bgr = frames_factory(160, 120, 1)[0]
    yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)  # limited enough for the check below
    y, u, v = yuv[:120], yuv[120:150].reshape(60, 80), yuv[150:].reshape(60, 80)
    before = [plane.copy() for plane in (y, u, v)]
    masked = Masks([QUAD]).apply_planes(y, u, v)
    assert all(np.array_equal(plane, copy) for plane, copy in zip((y, u, v), before))  # the decoder's untouched
    assert masked[0][inside(QUAD, 160, 120, 0.5)].max() == 16
    assert set(np.unique(masked[1][inside(QUAD, 80, 60, 0.5)])) == {128}
    picture = video_image_from_planes(*masked, (160, 120))
    assert picture[inside(QUAD, 160, 120, 2.0)].max() <= 16


def test_masks_of_a_camera_config():
    config = config_from_yaml(f"privacy:\n  masks: [{json.dumps(QUAD)}, {json.dumps(TRIANGLE)}]\n")
    masks = Masks.of(next(iter(config.cameras.values())))
    assert len(masks) == 2 and np.allclose(masks.polygons[1], TRIANGLE)
    assert not Masks.of(next(iter(config_from_yaml("source: null\n").cameras.values())))


# -- config errors, one line each ------------------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ("privacy:\n  masks: [[[0, 0], [1.5, 0], [1, 1]]]\n",
     "cfg.yaml: privacy.masks[0]: mask points are in 0-1 image coordinates, got [1.5, 0]"),
    ("privacy:\n  masks: [[[0, 0], [1, 0], [1, -0.1]]]\n",
     "cfg.yaml: privacy.masks[0]: mask points are in 0-1 image coordinates, got [1, -0.1]"),
    ("privacy:\n  masks: [[[0, 0], [1, 0]]]\n",
     "cfg.yaml: privacy.masks[0]: a mask polygon needs at least 3 points [x, y], got 2"),
    ("privacy:\n  pictures: false\noutput:\n  video: out.mp4\n",
     "cfg.yaml: output.video: output.video keeps pictures, but privacy.pictures is false (remove one of them)"),
    ("cameras:\n  sink:\n    source: a.mp4\n    privacy: {pictures: false}\n    output: {video: x.mp4}\n",
     "cfg.yaml: cameras.sink.output.video: output.video keeps pictures, but privacy.pictures is false "
     "(remove one of them)"),
])
def test_mask_and_privacy_mistakes_are_one_line_errors(text, message):
    assert error_of(config_from_yaml, text, "cfg.yaml") == message


def test_pictures_false_alone_simply_keeps_no_pictures():
    camera = next(iter(config_from_yaml("privacy:\n  pictures: false\n").cameras.values()))
    assert not camera.keeps_pictures and camera.clips == "none"


# -- running: masks in the live view, the snapshot, the annotated video and the model's input ---------------

def mjpeg_frame(url: str) -> np.ndarray:
    with httpx.Client(timeout=10) as http, http.stream("GET", url) as response:
        assert response.status_code == 200
        reader = MjpegReader(response)
        reader.next_part()  # the first part may be a frame drawn before anyone watched
        return decode_jpeg(reader.next_part()[1])


def assert_masked(image: np.ndarray, polygon=QUAD, margin: float = 4.0) -> None:
    """Black inside the polygon (≤ 16 after JPEG or H.264), the red picture outside it."""
    height, width = image.shape[:2]
    assert image[inside(polygon, width, height, margin)].max() <= 16
    assert np.median(image[outside(polygon, width, height, margin)][:, 2]) > 150  # red is there


@pytest.fixture
def red_video(script_video):
    return script_video([("red", 6.0)])


def test_masks_in_the_mjpeg_frame_the_snapshot_and_the_annotated_video(tmp_path, colour_model_xml,
                                                                       compiled_cache, red_video, ffmpeg_stream):
    """A file camera writing an annotated video (BGR pictures) and a live stream camera (pictures from the
    decoder's planes), both masked, served by ``edge-har serve``."""
    stream = ffmpeg_stream(red_video)
    video_out = tmp_path / "annotated-file.mp4"
    config = {
        "model": {"path": str(colour_model_xml)}, "inference": {"cache_dir": str(compiled_cache)},
        "http": {"enabled": True, "port": free_port()},
        "privacy": {"masks": [QUAD]},
        "evidence": {"clips": "none"},
        "output": {"progress": False},
        "cameras": {"file": {"source": str(red_video), "output": {"video": str(video_out)}},
                    "live": {"source": stream.url()}},
    }
    server = Serving(config, tmp_path, tmp_path / "home")
    try:
        server.wait_for(lambda: server.status()["cameras"]["live"]["frames"] > 30, "live frames")
        assert_masked(mjpeg_frame(server.url + "/cameras/live/mjpeg"))
        for camera in ("live", "file"):
            snapshot = server.wait_for(lambda: server.get(f"/cameras/{camera}/snapshot.jpg"), "a snapshot")
            assert snapshot.status_code == 200
            assert_masked(decode_jpeg(snapshot.content))
        server.wait_for(lambda: server.status()["cameras"]["file"]["state"] == "finished", "the file finished")
        assert server.stop() == 0
    finally:
        server.kill()
    capture = cv2.VideoCapture(str(video_out))
    frames = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames += 1
        assert_masked(frame)
    capture.release()
    assert frames == 150


@pytest.mark.parametrize("ring", ["planes", "bgr"])
def test_mask_inference_makes_the_model_see_the_masked_picture(tmp_path, colour_model_xml, compiled_cache,
                                                               red_video, ring):
    """The whole picture masked: the model sees black (flat, as the oracle says of black clips) only with
    ``mask_inference``; without it, the red clip is washing hands. ``bgr``: the ring fed from BGR pictures
    (the camera writes video); ``planes``: from the decoder's yuv420p planes."""
    black = [np.zeros((120, 160, 3), np.uint8)] * 16
    assert oracle_probabilities(colour_model_xml, black).max() < 0.05
    whole = [[0, 0], [1, 0], [1, 1], [0, 1]]
    scores = {}
    for mask_inference in (False, True):
        out = tmp_path / f"mask-inference-{mask_inference}"
        out.mkdir()
        output = {"events": str(out / "events.jsonl"), "include_scores": True, "progress": False}
        if ring == "bgr":
            output["video"] = str(out / "annotated.mp4")
        config = {"source": str(red_video), "model": {"path": str(colour_model_xml)},
                  "inference": {"cache_dir": str(compiled_cache)}, "sampling": {"mode": "batch"},
                  "output": output, "evidence": {"clips": "none"},
                  "privacy": {"masks": [whole], "mask_inference": mask_inference}}
        (out / "cfg.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        result = subprocess.run([sys.executable, "-m", "edge", "run", "-c", str(out / "cfg.yaml")], cwd=out,
                                env=environment(tmp_path / "home"), capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        lines = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines() if line.strip()]
        predictions = [line for line in lines if "clip_index" in line]
        assert len(predictions) == 10  # 150 frames in 16-frame clips, the last one padded
        scores[mask_inference] = [(line["label"], line["score"]) for line in predictions]
    assert all(label == "washing hands" and score >= 0.9 for label, score in scores[False])
    assert all(score < 0.05 for _, score in scores[True])


# -- privacy.pictures: false, every path -----------------------------------------------------------------------

RULES = [{"name": "wash-20s", "kind": "min_duration", "activity": "handwash", "seconds": 20},
         {"name": "no-smoking", "kind": "forbidden", "activity": "smoking"}]


def picture_files(*folders: Path) -> list[Path]:
    found = []
    for folder in folders:
        for path in Path(folder).rglob("*"):
            if path.is_file() and (path.suffix.lower() in PICTURE_SUFFIXES or _looks_like_a_picture(path)):
                found.append(path)
    return found


def _looks_like_a_picture(path: Path) -> bool:
    """Magic numbers of JPEG, PNG, MP4/MOV (ftyp), Matroska/WebM, MPEG-TS, whatever the file's name."""
    try:
        with open(path, "rb") as file:
            head = file.read(12)
    except OSError:
        return False
    return (head[:3] == b"\xff\xd8\xff" or head[:8] == b"\x89PNG\r\n\x1a\n" or head[4:8] == b"ftyp"
            or head[:4] == b"\x1a\x45\xdf\xa3" or (len(head) >= 1 and head[:1] == b"G" and path.stat().st_size % 188 == 0
                                                    and path.stat().st_size >= 188 * 4))


def test_pictures_false_keeps_no_pixel_and_every_picture_endpoint_refuses(tmp_path, colour_model_xml,
                                                                          compiled_cache, script_video,
                                                                          ffmpeg_stream, tmp_path_factory):
    """``privacy.pictures: false`` with everything else at its default (evidence clips of failed checks,
    snapshots, http on), a file camera and a live stream, rules that fail on both: afterwards no image or
    video file exists in the working folder or EDGE_HAR_HOME, and every picture endpoint answered 403."""
    file_video = script_video([("red", 2.56), ("grey", 3.2), ("green", 1.28), ("grey", 3.2)])
    stream = ffmpeg_stream(script_video([("red", 1.28), ("green", 1.28), ("grey", 3.84)]))
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    config = {
        "model": {"path": str(colour_model_xml)}, "inference": {"cache_dir": str(compiled_cache)},
        "http": {"enabled": True, "port": free_port()},
        "privacy": {"pictures": False},
        "output": {"events": "events-{camera}.jsonl", "subtitles": "labels-{camera}.vtt", "rotate": "none",
                   "progress": False},
        "activities": {**ACTIVITIES_YAML, "handwash": {"labels": ["washing hands"], "min_score": 0.5,
                                                         "gap_s": 0.5}},
        "rules": RULES,
        "cameras": {"door": {"source": str(file_video)}, "hall": {"source": stream.url()}},
    }
    server = Serving(config, work, home, tmp_path / "tmp")
    reason = {camera: f"privacy.pictures is false for camera {camera}" for camera in ("door", "hall")}
    try:
        def failed_on_both():
            checks = server.get("/api/events", params={"kind": "check", "limit": 1000}).json()
            failed = {check["camera"] for check in checks if check["passed"] is False}
            return failed >= {"door", "hall"}

        server.wait_for(failed_on_both, "a failed check on both cameras", timeout_s=120)
        status = server.status()["cameras"]
        assert status["door"]["pictures"] is False and status["hall"]["pictures"] is False
        assert status["hall"]["state"] == "online" and status["hall"]["frames"] > 0
        for camera in ("door", "hall"):
            for path in (f"/cameras/{camera}/snapshot.jpg", f"/cameras/{camera}/mjpeg",
                         f"/clips/{camera}/2026-11-28/x.mp4", f"/clips/{camera}/x.jpg", f"/clips/{camera}/x.vtt"):
                response = server.get(path, headers={"Range": "bytes=0-"})
                assert response.status_code == 403, path
                assert response.json() == {"detail": reason[camera]}
            assert server.get("/api/clips", params={"camera": camera}).json() == []
        assert server.get("/api/clips").json() == []
        assert server.stop() == 0
    finally:
        server.kill()
    assert picture_files(tmp_path) == []  # the working folder, EDGE_HAR_HOME, TMPDIR
    # What was kept: labels only.
    events = [json.loads(line) for line in (work / "events-door.jsonl").read_text().splitlines() if line.strip()]
    failed = [event for event in events if event.get("event") == "check" and event["passed"] is False]
    assert failed and all(event.get("clip") is None and event.get("snapshot") is None for event in failed)
    assert not [event for event in events if event.get("event") == "clip"]


def test_run_with_pictures_false_keeps_none_and_refuses_a_picture_output(tmp_path, colour_model_xml,
                                                                         compiled_cache, script_video):
    video = script_video([("red", 2.56), ("grey", 3.2)])
    config = {"source": str(video), "model": {"path": str(colour_model_xml)},
              "inference": {"cache_dir": str(compiled_cache)}, "privacy": {"pictures": False},
              "output": {"events": "events.jsonl", "progress": False}, "activities": ACTIVITIES_YAML,
              "rules": RULES}
    work = tmp_path / "work"
    work.mkdir()
    (work / "cfg.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    env = environment(tmp_path / "home", tmp_path / "tmp")

    def edge_har(*args):
        return subprocess.run([sys.executable, "-m", "edge", *args], cwd=work, env=env, capture_output=True,
                              text=True, timeout=300)

    for extra, key in ((["--output-video", "out.mp4"], "output.video"), (["--display"], "output.display")):
        refused = edge_har("run", "-c", "cfg.yaml", *extra)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        assert refused.stderr.strip().splitlines()[-1].endswith(
            f"{key} keeps pictures, but privacy.pictures is false (remove one of them)")
    result = edge_har("run", "-c", "cfg.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    events = [json.loads(line) for line in (work / "events.jsonl").read_text().splitlines() if line.strip()]
    assert [event["rule"] for event in events if event.get("event") == "check" and event["passed"] is False] \
        == ["wash-20s"]
    assert picture_files(tmp_path) == [] and not (work / "out.mp4").exists()


def test_the_hub_of_a_camera_without_pictures_never_gets_one(tmp_path, colour_model_xml, compiled_cache,
                                                             script_video):
    """In process: the service's live-page hubs after a run with HTTP on. The camera that keeps pictures
    published its annotated frames; the one that does not, none (its lane was built without the hub)."""
    from edge.config import config_from_mapping
    from edge.engine.service import Service

    video = script_video([("red", 1.28)])
    config = config_from_mapping({
        "model": {"path": str(colour_model_xml)}, "inference": {"cache_dir": str(compiled_cache)},
        "http": {"enabled": True, "port": free_port()}, "output": {"progress": False},
        "evidence": {"clips": "none"},
        "cameras": {"public": {"source": str(video)},
                    "private": {"source": str(video), "privacy": {"pictures": False}}}})
    service = Service(config, mode="run")
    result = service.run()
    assert {name: summary["frames"] for name, summary in result.summaries.items()} == {"public": 32, "private": 32}
    assert service.hubs["public"].latest() is not None
    assert service.hubs["private"].latest() is None
    assert service.lanes["private"].status()["pictures"] is False
    assert not service.lanes["private"].output.active
