"""Several cameras on one model: the service against single-camera runs and against real streams.

Oracles: a single-camera run of the same source (itself checked against blobFromImages + plain
OpenVINO in test_pipeline.py) for the per-camera predictions; a real ffmpeg HTTP server on 127.0.0.1,
killed and restarted, for the live camera's gap.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import yaml

from edge import pipeline
from edge.config import config_from_mapping
from edge.engine.signals import StopFlag
from support_sources import h264_video, rtsp_server  # noqa: F401  (fixtures)


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def predictions(lines: list[dict]) -> list[dict]:
    return [line for line in lines if "event" not in line]


def base(demo_xml, compiled_cache) -> dict:
    return {"model": {"path": str(demo_xml)},
            "inference": {"precision": "f32", "cache_dir": str(compiled_cache)},
            "output": {"include_scores": True, "progress": False}}


def test_each_camera_equals_its_own_single_camera_run(demo_xml, compiled_cache, moving_shapes_video, tmp_path):
    """Two file cameras share one model: each camera's lines equal a run of that camera alone, to 1e-5.
    The videos differ, so a clip handed to the wrong camera's postprocess would fail the comparison."""
    videos = {"left": moving_shapes_video(70, 176, 144, seed=1), "right": moving_shapes_video(90, 160, 120, seed=2)}
    sampling = {"left": {"mode": "batch"}, "right": {"mode": "rolling", "stride": 4}}
    together = base(demo_xml, compiled_cache)
    together["output"]["events"] = str(tmp_path / "both" / "{camera}.jsonl")
    together["cameras"] = {name: {"source": str(video), "sampling": sampling[name]} for name, video in videos.items()}
    result = pipeline.run(config_from_mapping(together))
    assert result.exit_code == 0
    assert set(result.summaries) == {"left", "right"}

    for name, video in videos.items():
        alone = base(demo_xml, compiled_cache)
        alone.update(source=str(video), sampling=sampling[name])
        alone["output"]["events"] = str(tmp_path / "alone" / f"{name}.jsonl")
        assert pipeline.run(config_from_mapping(alone)).exit_code == 0
        shared = predictions(read_lines(tmp_path / "both" / f"{name}.jsonl"))
        single = predictions(read_lines(tmp_path / "alone" / f"{name}.jsonl"))
        assert len(shared) == len(single) > 0
        for got, want in zip(shared, single):
            assert got["camera"] == name
            assert (got["clip_index"], got["start_frame"], got["end_frame"]) == \
                (want["clip_index"], want["start_frame"], want["end_frame"])
            np.testing.assert_allclose(got["scores"], want["scores"], atol=1e-5, rtol=0)
    # the two cameras' clips really differ: a swap could not pass the comparison above
    left = predictions(read_lines(tmp_path / "both" / "left.jsonl"))[0]["scores"]
    right = predictions(read_lines(tmp_path / "both" / "right.jsonl"))[0]["scores"]
    assert np.max(np.abs(np.subtract(left, right))) > 1e-3


def test_every_line_names_its_camera_and_the_run(demo_xml, compiled_cache, moving_shapes_video, tmp_path):
    config = base(demo_xml, compiled_cache)
    config["output"].update(events=str(tmp_path / "{camera}" / "events.jsonl"),
                            summary=str(tmp_path / "{camera}" / "summary.json"), include_scores=False)
    config["cameras"] = {"a": {"source": str(moving_shapes_video(40, 128, 96, seed=3))},
                         "b": {"source": str(moving_shapes_video(20, 128, 96, seed=4))}}
    result = pipeline.run(config_from_mapping(config))
    run_ids = set()
    for name, frames in (("a", 40), ("b", 20)):
        lines = read_lines(tmp_path / name / "events.jsonl")
        assert lines and all(line["camera"] == name for line in lines)
        run_ids |= {line["run_id"] for line in lines}
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert summary["camera"] == name and summary["frames"] == frames and summary["state"] == "finished"
        assert summary["clips"] == len(lines) == -(-frames // 16)
        assert summary["shared_model"]["cameras"] == ["a", "b"]
        assert summary == result.summaries[name]
    assert len(run_ids) == 1


def test_a_missing_camera_goes_offline_and_the_others_carry_on(demo_xml, compiled_cache, moving_shapes_video,
                                                                tmp_path):
    config = base(demo_xml, compiled_cache)
    config["output"].update(events=str(tmp_path / "{camera}.jsonl"), summary=str(tmp_path / "{camera}.json"))
    config["cameras"] = {"good": {"source": str(moving_shapes_video(32, 128, 96))},
                         "gone": {"source": str(tmp_path / "nowhere.mp4")}}
    result = pipeline.run(config_from_mapping(config))
    assert result.exit_code == 3  # a camera failed
    assert len(predictions(read_lines(tmp_path / "good.jsonl"))) == 2
    gone = result.summaries["gone"]
    assert gone["state"] == "offline" and "video file not found" in gone["state_reason"]
    assert json.loads((tmp_path / "gone.json").read_text())["state"] == "offline"
    assert result.summaries["good"]["state"] == "finished"


def test_serve_a_file_and_a_live_stream_that_drops(demo_xml, demo_home, compiled_cache, moving_shapes_video,
                                                     ffmpeg_stream, tmp_path):
    """`edge-har serve` with a file camera and a live HTTP camera; the stream is killed and restarted.
    The file camera's clips are all there; the live one records a gap and comes back."""
    clip = moving_shapes_video(250, 160, 120, seed=5)
    server = ffmpeg_stream(clip)
    config = {
        "model": {"path": str(demo_xml)},
        "inference": {"cache_dir": str(compiled_cache)},
        "sampling": {"mode": "rolling", "stride": 8},
        "reconnect": {"attempts": 40, "delay_s": 0.2, "max_delay_s": 0.5},
        "output": {"events": str(tmp_path / "{camera}" / "events.jsonl"), "rotate": "none",
                   "summary": str(tmp_path / "{camera}" / "summary.json"), "log_every_s": 1.0},
        "http": {"enabled": False},
        "cameras": {"door": {"source": str(moving_shapes_video(400, 160, 120, seed=6)),
                             "sampling": {"mode": "batch"}},
                    "yard": {"source": server.url()}},
    }
    config_path = tmp_path / "edge-har.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = {**__import__("os").environ, "EDGE_HAR_HOME": str(demo_home)}
    process = subprocess.Popen([sys.executable, "-m", "edge", "serve", "-c", str(config_path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    stderr_lines: list[str] = []
    seen = threading.Condition()

    def pump():
        for line in process.stderr:
            with seen:
                stderr_lines.append(line)
                seen.notify_all()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()

    def wait_for(predicate, timeout):
        with seen:
            return seen.wait_for(lambda: predicate("".join(stderr_lines)), timeout)

    def yard_predictions() -> int:
        path = tmp_path / "yard" / "events.jsonl"
        return len(predictions(read_lines(path))) if path.exists() else 0

    try:
        assert wait_for(lambda text: "yard: online" in text, 120), "".join(stderr_lines)
        before = yard_predictions()
        server.stop()  # the stream drops
        assert wait_for(lambda text: "reconnect" in text, 60), "".join(stderr_lines)
        ffmpeg_stream(clip, port=server.port)  # and comes back on the same port
        with seen:
            assert seen.wait_for(lambda: yard_predictions() > before + 2, 120), "".join(stderr_lines)
        door_path = tmp_path / "door" / "events.jsonl"
        with seen:  # the file camera has all its clips before the stop (the log line comes every second)
            assert seen.wait_for(lambda: len(predictions(read_lines(door_path))) == 25, 300), "".join(stderr_lines)
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    yard = read_lines(tmp_path / "yard" / "events.jsonl")
    gaps = [line for line in yard if line.get("event") == "gap"]
    assert gaps and gaps[0]["camera"] == "yard" and gaps[0]["gap_s"] > 0
    after_gap = [line for line in yard[yard.index(gaps[0]):] if "event" not in line]
    assert after_gap, "the live camera came back after the gap"
    door = predictions(read_lines(tmp_path / "door" / "events.jsonl"))
    assert [line["clip_index"] for line in door] == list(range(25))  # 400 frames: every clip, in order
    summary = json.loads((tmp_path / "yard" / "summary.json").read_text())
    assert summary["reconnects"] >= 1 and summary["interrupted_by"] == "SIGTERM"
    assert json.loads((tmp_path / "door" / "summary.json").read_text())["state"] == "finished"


class Watcher:
    """A sink subscribed to the service: the test waits on what the service reports, not on time."""

    def __init__(self):
        self.events = []
        self.cond = threading.Condition()

    def handle(self, event):
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def close(self):
        pass

    def wait_for(self, predicate, timeout=120.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self.events), timeout)


def test_serve_keeps_running_after_its_files_end_until_stopped(demo_xml, compiled_cache, moving_shapes_video,
                                                               tmp_path):
    """serve runs until stopped even after its files ended; stopping finalises everything and exits 0."""
    from edge.engine.service import Service

    config = base(demo_xml, compiled_cache)
    config["output"].update(events=str(tmp_path / "{camera}.jsonl"), rotate="none", include_scores=False)
    config["http"] = {"enabled": False}
    config["cameras"] = {"only": {"source": str(moving_shapes_video(32, 128, 96))}}
    stop = StopFlag()
    service = Service(config_from_mapping(config), mode="serve", stop=stop)
    watcher = Watcher()
    service.subscribe(watcher)
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("result", service.run()))
    worker.start()
    try:
        assert watcher.wait_for(lambda events: any(e.kind == "status" and e.state == "finished"
                                                   for e in events))
        assert worker.is_alive()  # the file ended; serve is still up
        assert service.status()["cameras"]["only"]["state"] == "finished"
    finally:
        stop.request()
        worker.join(60)
    assert outcome["result"].exit_code == 0
    assert outcome["result"].summary["state"] == "finished"
    assert [e.clip_index for e in watcher.events if e.kind == "prediction"] == [0, 1]
    assert len(read_lines(tmp_path / "only.jsonl")) == 2


def test_an_rtsp_camera_beside_a_file_reconnects_when_its_server_restarts(demo_xml, compiled_cache, h264_video,
                                                                           rtsp_server, moving_shapes_video):
    """RTSP, what cameras speak: GStreamer's RTSP server on 127.0.0.1 serves an H.264 file to one camera
    while a file camera runs beside it. The server is killed and started again on the same port: the
    RTSP camera records a gap and its predictions come back; the file camera loses no clip."""
    from edge.engine.service import Service

    server = rtsp_server(h264_video(250, 160, 120))
    config = base(demo_xml, compiled_cache)
    config["output"].update(include_scores=False, log_every_s=3600.0)
    config.update(sampling={"mode": "rolling", "stride": 8}, http={"enabled": False},
                  reconnect={"attempts": 40, "delay_s": 0.2, "max_delay_s": 0.5})
    config["cameras"] = {"door": {"source": str(moving_shapes_video(200, 160, 120, seed=8)),
                                  "sampling": {"mode": "batch"}},
                         "entrance": {"source": server.url()}}
    stop = StopFlag()
    service = Service(config_from_mapping(config), mode="serve", stop=stop)
    watcher = Watcher()
    service.subscribe(watcher)
    worker = threading.Thread(target=service.run)
    worker.start()

    def entrance(kind):
        return [e for e in watcher.events if e.camera == "entrance" and e.kind == kind]

    try:
        assert watcher.wait_for(lambda events: len(entrance("prediction")) >= 2)
        server.stop()
        server.start()
        assert watcher.wait_for(lambda events: entrance("gap") and
                                any(e.clip_index > 0 for e in entrance("prediction")
                                    if watcher.events.index(e) > watcher.events.index(entrance("gap")[0])))
        assert watcher.wait_for(lambda events: any(e.camera == "door" and e.kind == "status"
                                                   and e.state == "finished" for e in events))
    finally:
        stop.request()
        worker.join(60)
    states = [e.state for e in watcher.events if e.camera == "entrance" and e.kind == "status"]
    changes = [state for number, state in enumerate(states) if number == 0 or state != states[number - 1]]
    assert "reconnecting" in changes and changes[changes.index("reconnecting") + 1] == "online", states
    door = [e.clip_index for e in watcher.events if e.camera == "door" and e.kind == "prediction"]
    assert door == list(range(13))  # 200 frames in batch mode: every clip, in order


def test_serve_a_live_camera_away_longer_than_its_quick_attempts_comes_back(demo_xml, compiled_cache,
                                                                             moving_shapes_video, ffmpeg_stream):
    """serve never gives up on a live camera: its stream is away for longer than all the quick
    reconnection attempts; the camera is `offline` with its reason meanwhile (one status event per
    transition) and `online` again by itself when the stream returns, with predictions after its gap."""
    from edge.engine.service import Service

    clip = moving_shapes_video(250, 160, 120, seed=9)
    server = ffmpeg_stream(clip)
    config = base(demo_xml, compiled_cache)
    config["output"].update(include_scores=False, log_every_s=3600.0)
    config.update(sampling={"mode": "rolling", "stride": 8}, http={"enabled": False},
                  reconnect={"attempts": 2, "delay_s": 0.1, "max_delay_s": 0.3, "open_timeout_s": 2.0,
                             "read_timeout_s": 2.0})
    config["cameras"] = {"yard": {"source": server.url()}}
    stop = StopFlag()
    service = Service(config_from_mapping(config), mode="serve", stop=stop)
    watcher = Watcher()
    service.subscribe(watcher)
    worker = threading.Thread(target=service.run)
    worker.start()

    def kinds(kind):
        return [e for e in watcher.events if e.kind == kind]

    try:
        assert watcher.wait_for(lambda events: len(kinds("prediction")) >= 1)
        server.stop()
        # Out of quick attempts: offline, still trying (every max_delay_s), the service still up.
        assert watcher.wait_for(lambda events: any(e.state == "offline" for e in kinds("status")))
        offline = next(e for e in kinds("status") if e.state == "offline")
        assert "retrying every 0.3 s" in offline.reason
        assert worker.is_alive() and service.status()["cameras"]["yard"]["state"] == "offline"
        ffmpeg_stream(clip, port=server.port)  # the camera is back after its "reboot"
        assert watcher.wait_for(lambda events: kinds("gap") and any(
            e.state == "online" for e in kinds("status")[kinds("status").index(offline):]))
        gap = kinds("gap")[0]
        assert watcher.wait_for(lambda events: any(watcher.events.index(e) > watcher.events.index(gap)
                                                   for e in kinds("prediction")))
    finally:
        stop.request()
        worker.join(60)
    states = [e.state for e in kinds("status")]
    assert states[:2] == ["starting", "online"] and states[-1] == "finished"
    assert all(a != b for a, b in zip(states, states[1:])), states  # one event per transition
    assert "offline" in states and states[states.index("offline") + 1] == "online"
    assert service.lanes["yard"].health.reconnect_attempts > 2  # it kept trying after its 2 quick attempts
