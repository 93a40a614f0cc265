"""Retention and the disk (issue 16, part 4): a full disk is a state, events files rotate, evidence is kept
by age and by free space.

Oracles: a real filesystem that fills up (a small tmpfs this test mounts; the kernel says ENOSPC), every
line of the events file parsed back, the files left on disk listed, and replay over one concatenated file.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from edge.config import config_from_mapping
from edge.eventfiles import EventFilesError, expand_events, series
from edge.events import GapEvent, from_json_dict
from edge.evidence.storage import GB, StorageGuard
from edge.sinks import EventWriter, SinkError, write_summary
from edge.sinks.jsonl import dated_path, rotation

TMPFS_BYTES = 2 * 1024 * 1024


def _mount_tmpfs(where: Path, size: int = TMPFS_BYTES) -> None:
    where.mkdir(parents=True, exist_ok=True)
    try:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                                capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.skip(f"cannot mount a tmpfs to fill up ({error}); the full-disk tests need root and mount")
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill up: {result.stderr.strip()} (needs root and mount permission)")


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs mounted at ``tmp_path/disk`` for this test, unmounted afterwards."""
    where = tmp_path / "disk"
    _mount_tmpfs(where)
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def fill(path: Path, leave: int = 0) -> Path:
    """Write zeros to ``path`` until its filesystem has at most ``leave`` bytes free (ENOSPC when 0)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        chunk = b"\0" * 65536
        while True:
            free = os.statvfs(path).f_bavail * os.statvfs(path).f_frsize
            if free <= leave:
                break
            try:
                os.write(fd, chunk[:max(1, min(len(chunk), free - leave))])
            except OSError:
                break
    finally:
        os.close(fd)
    return path


def gap(number: int, wall_time: str = "2026-12-01T10:00:00.000+00:00", camera: str = "door") -> GapEvent:
    return GapEvent(camera=camera, wall_time=wall_time, source="rtsp://cam/" + "x" * 300, after_frame=number,
                    gap_s=1.5, reason="stream dropped").stamped("run-1")


def parsed_lines(path: Path) -> list[dict]:
    """Every line of ``path`` as JSON: a torn line fails here."""
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), "the file ends inside a line"
    return [json.loads(line) for line in data.decode("utf-8").splitlines()]


def full_disk_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "edge.sinks.jsonl" and r.levelno == logging.WARNING and "disk is full" in r.getMessage()]


# ---------------------------------------------------------------- the events file on a full disk

def test_event_writer_on_a_full_disk_loses_whole_lines_warns_once_and_resumes(small_disk, caplog):
    caplog.set_level(logging.INFO)
    path = small_disk / "events.jsonl"
    writer = EventWriter(path)
    for number in range(5):
        writer.write(gap(number))
    filler = fill(small_disk / "filler")
    for number in range(5, 60):
        writer.write(gap(number))
    assert writer.disk_full and writer.status()["disk_full"]
    lines = parsed_lines(path)
    # the tail of the file's last page took a few more lines and then half of one, which was truncated away
    assert 5 < writer.lines_written < 15 and len(lines) == writer.lines_written
    assert writer.lines_not_written >= 50 and writer.lines_written + writer.lines_not_written == 60
    assert [line["after_frame"] for line in lines] == list(range(writer.lines_written))
    assert len(full_disk_warnings(caplog)) == 1          # one episode, one line

    filler.unlink()                                      # space returns: the next line is written
    for number in range(60, 65):
        writer.write(gap(number))
    assert not writer.disk_full
    lines = parsed_lines(path)
    assert len(lines) == writer.lines_written and [line["after_frame"] for line in lines[-5:]] == list(range(60, 65))
    assert any("again" in r.getMessage() and f"{writer.lines_not_written} lines" in r.getMessage()
               for r in caplog.records)

    fill(small_disk / "filler")                          # a second episode: a second warning
    for number in range(65, 80):
        writer.write(gap(number))
    writer.close()
    assert len(full_disk_warnings(caplog)) == 2
    warnings = [r.getMessage() for r in caplog.records if r.name == "edge.sinks.jsonl" and r.levelno >= logging.WARNING]
    assert len(warnings) == 3 and warnings[-1] == (   # an episode each, and the tally when it closes
        f"events: {writer.lines_not_written} of 80 lines could not be written to {path}")
    assert len(parsed_lines(path)) == writer.lines_written == 80 - writer.lines_not_written


def test_summary_on_a_full_disk_is_one_line_error_and_leaves_no_temp_file(small_disk):
    (small_disk / "summary.json").write_text('{"frames": 1}\n')
    fill(small_disk / "filler")
    with pytest.raises(SinkError, match="cannot write the summary .*summary.json: No space left on device"):
        write_summary(small_disk / "summary.json", {"frames": 2, "padding": "x" * 10000})
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "summary.json"]
    assert json.loads((small_disk / "summary.json").read_text()) == {"frames": 1}  # the old one stands


def test_a_run_whose_outputs_land_on_a_full_disk_exits_normally(small_disk, demo_xml, demo_home,
                                                                             compiled_cache, moving_shapes_video):
    config = {"model": {"path": str(demo_xml)},
              "inference": {"precision": "f32", "cache_dir": str(compiled_cache)},
              "sampling": {"mode": "rolling", "stride": 4},
              "output": {"events": str(small_disk / "events.jsonl"), "summary": str(small_disk / "summary.json"),
                         "video": str(small_disk / "annotated.mp4"), "progress": False},
              "http": {"enabled": False},
              "cameras": {"door": {"source": str(moving_shapes_video(96, 160, 120, seed=3))}}}
    config_path = small_disk.parent / "edge-har.yaml"
    config_path.write_text(yaml.safe_dump(config))
    fill(small_disk / "filler")
    env = {**os.environ, "EDGE_HAR_HOME": str(demo_home)}
    result = subprocess.run([sys.executable, "-m", "edge", "run", "-c", str(config_path)], env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr   # not 3 (a lane stopped), not -11 (FFmpeg's flush crashed)
    assert "Traceback" not in result.stderr
    assert result.stderr.count("encoding failed: No space left on device") == 1, result.stderr
    assert result.stderr.count("disk is full") == 1, result.stderr
    assert result.stderr.count("cannot write the summary") == 1, result.stderr
    assert parsed_lines(small_disk / "events.jsonl") == [] or all(parsed_lines(small_disk / "events.jsonl"))
    assert not (small_disk / "summary.json").exists()
    assert sorted(p.name for p in small_disk.iterdir()) == ["annotated.mp4", "events.jsonl", "filler"]  # no temp file


def test_status_and_metrics_show_the_disk():
    from prometheus_client import CollectorRegistry, generate_latest

    from edge.sinks.prometheus import PrometheusSink

    status = {"cameras": {"door": {"state": "online", "fps": 25.0, "skipped_clips": 0,
                                   "events": {"disk_full": True, "lines_written": 3, "lines_not_written": 7}}},
              "model": {}, "storage": {"free_bytes": {"/data": 12345}, "deleted": {"recording": 2, "clip": 1},
                                       "disk_full": True}}
    registry = CollectorRegistry()
    PrometheusSink(registry, status=lambda: status, cameras=["door"])
    text = generate_latest(registry).decode()
    assert 'edgehar_events_not_written_total{camera="door"} 7.0' in text
    assert 'edgehar_disk_full{camera="door"} 1.0' in text
    assert 'edgehar_disk_free_bytes{mount="/data"} 12345.0' in text
    assert 'edgehar_evidence_deleted_total{kind="recording"} 2.0' in text
    assert 'edgehar_evidence_deleted_total{kind="clip"} 1.0' in text


# ---------------------------------------------------------------- rotation

def local_iso(moment: datetime) -> str:
    return moment.astimezone().isoformat(timespec="milliseconds")


def test_rotate_auto_follows_the_mode():
    assert rotation("auto", "serve") == "daily" and rotation("auto", "run") == "none"
    assert rotation("daily", "run") == "daily" and rotation("none", "serve") == "none"
    assert dated_path("/x/events.jsonl", datetime(2026, 12, 5).date()) == Path("/x/events-2026-12-05.jsonl")


def test_rotation_deletes_only_its_own_files_past_retention(tmp_path):
    now = datetime(2026, 12, 5, 12, 0).astimezone()
    folder = tmp_path / "logs"
    folder.mkdir()
    names = {"events-2026-10-01.jsonl": "old", "events-2026-11-04.jsonl": "31 days ago",
             "events-2026-11-06.jsonl": "29 days ago", "kitchen-2026-10-01.jsonl": "another writer's",
             "events-2026-10-01.txt": "not ours", "events.jsonl": "the unrotated file"}
    for name in names:
        (folder / name).write_text("{}\n")
    writer = EventWriter(folder / "events.jsonl", rotate="daily", retain_days=30, clock=now.timestamp)
    writer.write(gap(0, wall_time=local_iso(now)))
    writer.close()
    assert writer.current_path == folder / "events-2026-12-05.jsonl"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["events-2026-11-06.jsonl", "kitchen-2026-10-01.jsonl", "events-2026-10-01.txt", "events.jsonl",
         "events-2026-12-05.jsonl"])
    assert writer.files_deleted == 2


REPLAY_CONFIG = {
    "activities": {"handwash": {"labels": ["washing hands"], "min_score": 0.5, "gap_s": 2.0}},
    "rules": [{"name": "wash-3s", "kind": "min_duration", "activity": "handwash", "seconds": 3}],
}


def test_a_run_across_midnight_writes_two_files_and_replay_of_the_folder_equals_their_concatenation(
        tmp_path, capsys):
    from test_replay import distribution, prediction_line

    from edge.cli import main

    midnight = datetime(2026, 12, 6).astimezone()     # local midnight, whatever the machine's zone
    clock = {"now": (midnight - timedelta(seconds=10)).timestamp()}
    folder = tmp_path / "events"
    writer = EventWriter(folder / "events.jsonl", rotate="daily", clock=lambda: clock["now"])
    script = ([distribution()] * 3 + [distribution(wash=0.93)] * 8 + [distribution()] * 6     # a wash...
              + [distribution(wash=0.95)] * 10 + [distribution()] * 4)                        # ...and one after 0:00
    written = []
    for number, p in enumerate(script):
        moment = midnight - timedelta(seconds=10) + timedelta(seconds=number * 0.64)
        clock["now"] = moment.timestamp()
        record = prediction_line(number, p, camera="sink")
        record["wall_time"] = local_iso(moment)
        event = from_json_dict(record)
        writer.write(event)
        written.append(event.to_json_dict())
    writer.close()
    day_one, day_two = folder / "events-2026-12-05.jsonl", folder / "events-2026-12-06.jsonl"
    assert sorted(folder.iterdir()) == [day_one, day_two]
    assert parsed_lines(day_one) + parsed_lines(day_two) == written
    assert parsed_lines(day_one)[-1]["wall_time"] < local_iso(midnight) <= parsed_lines(day_two)[0]["wall_time"]
    assert expand_events([folder]) == [day_one, day_two] == expand_events([str(folder / "events-*.jsonl")])
    assert series([day_one, day_two, tmp_path / "x.jsonl"]) == [[day_one, day_two], [tmp_path / "x.jsonl"]]

    config_path = tmp_path / "edge-har.yaml"
    config_path.write_text(yaml.safe_dump(REPLAY_CONFIG))
    concatenated = tmp_path / "all.jsonl"
    concatenated.write_bytes(day_one.read_bytes() + day_two.read_bytes())
    outputs = []
    for argument in (concatenated, folder, folder / "events-*.jsonl"):
        code = main(["replay", str(argument), "-c", str(config_path)])
        out, err = capsys.readouterr()
        assert code == 0, err
        outputs.append(out)
    assert outputs[0] == outputs[1] == outputs[2]
    checks = [json.loads(line) for line in outputs[0].splitlines() if json.loads(line)["event"] == "check"]
    assert [check["passed"] for check in checks] == [True, True]   # 8 and 10 clips of washing, both > 3 s


def test_replay_and_report_name_a_folder_or_glob_without_events(tmp_path, capsys):
    from edge.cli import main

    (tmp_path / "empty").mkdir()
    with pytest.raises(EventFilesError, match="no events files"):
        expand_events([tmp_path / "empty"])
    config_path = tmp_path / "edge-har.yaml"
    config_path.write_text(yaml.safe_dump(REPLAY_CONFIG))
    assert main(["replay", str(tmp_path / "nothing-*.jsonl"), "-c", str(config_path)]) == 2
    assert "nothing-*.jsonl: no events file matches" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "empty"), "-o", str(tmp_path / "t.png")]) == 2
    assert "a folder with no events files" in capsys.readouterr().err


# ---------------------------------------------------------------- the storage guard

def evidence_config(root: Path, **sections) -> object:
    mapping = {"cameras": {"door": {"source": "rtsp://127.0.0.1:1/door",
                                    "record": {"dir": str(root / "recordings" / "{camera}"),
                                               **sections.get("record", {})},
                                    "evidence": {"dir": str(root / "clips" / "{camera}"),
                                                 **sections.get("evidence", {})},
                                    "privacy": sections.get("privacy", {})}},
               "storage": sections.get("storage", {})}
    return config_from_mapping(mapping)


def put(path: Path, size: int, age_s: float, now: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\1" * size)
    os.utime(path, (now - age_s, now - age_s))
    return path


def clip_files(folder: Path, stem: str, size: int, age_s: float, now: float) -> list[Path]:
    return [put(folder / f"{stem}{suffix}", size if suffix == ".mp4" else 100, age_s, now)
            for suffix in (".mp4", ".jpg", ".vtt", ".json")]


def test_low_space_deletes_the_oldest_recordings_then_the_oldest_clips_never_a_young_clip(small_disk, monkeypatch):
    now = 1_800_000_000.0
    config = evidence_config(small_disk)   # pre_s + post_s = 10 s, record.segment_s = 10 s
    recordings, clips = small_disk / "recordings" / "door", small_disk / "clips" / "door"
    r1 = put(recordings / "2027-01-15" / "1799997000.000.mp4", 150_000, 3000, now)
    r2 = put(recordings / "2027-01-15" / "1799998000.000.mp4", 150_000, 2000, now)
    r3 = put(recordings / "2027-01-15" / "1799999995.000.mp4", 150_000, 5, now)        # being written
    c1 = clip_files(clips / "2027-01-14", "run1-wash-3s-1", 150_000, 5000, now)
    c2 = clip_files(clips / "2027-01-15", "run1-wash-3s-2", 150_000, 100, now)
    c3 = clip_files(clips / "2027-01-15", "run1-wash-3s-3", 150_000, 5, now)           # younger than 10 s
    # what must never go: outside the watched folders, a link out of them, a file beside the day folders
    outside = put(small_disk / "other" / "2027-01-01" / "old.mp4", 50_000, 99_999, now)
    link = clips / "2027-01-15" / "link.mp4"
    link.symlink_to(outside)
    loose = put(clips / "loose.mp4", 1000, 99_999, now)
    deleted_order = []
    real_unlink = os.unlink

    def unlink(path, *args, **kwargs):
        deleted_order.append(Path(path))
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    guard = StorageGuard.from_config(config, clock=lambda: now)
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    guard.min_free_bytes = free + 100_000                  # one recording (150 kB) is enough
    assert guard.keep_free() == 1
    assert deleted_order == [r1] and r2.exists() and all(p.exists() for p in c1 + c2 + c3)
    assert guard.status()["deleted"] == {"recording": 1, "clip": 0} and guard.status()["low"] == []

    guard.min_free_bytes = TMPFS_BYTES * 10                 # nothing is enough: everything that may go, goes
    assert guard.keep_free() == 3
    assert deleted_order[1] == r2 and set(deleted_order[2:6]) == set(c1) and set(deleted_order[6:]) == set(c2)
    assert r3.exists() and all(p.exists() for p in c3)
    assert outside.exists() and link.is_symlink() and loose.exists()
    assert guard.status()["deleted"] == {"recording": 2, "clip": 2}
    assert guard.status()["low"] and guard.status()["free_bytes"]
    assert not (clips / "2027-01-14").exists() and (clips / "2027-01-15").is_dir()  # emptied day folders go


def test_age_retention_by_kind_and_privacy_hours(tmp_path):
    now = 1_800_000_000.0
    config = evidence_config(tmp_path, record={"retain_days": 1}, evidence={"retain_days": 2},
                             privacy={"retain_pictures_h": 12}, storage={"min_free_gb": 0})
    recordings, clips = tmp_path / "recordings" / "door" / "2027-01-14", tmp_path / "clips" / "door" / "2027-01-14"
    old_recording = put(recordings / "a.mp4", 10, 1.5 * 86400, now)
    pictures_old_recording = put(recordings / "b.mp4", 10, 13 * 3600, now)  # past retain_pictures_h too
    new_recording = put(recordings / "c.mp4", 10, 6 * 3600, now)
    old_clip = clip_files(clips, "old", 10, 13 * 3600, now)        # past retain_pictures_h, within retain_days
    new_clip = clip_files(clips, "new", 10, 6 * 3600, now)
    guard = StorageGuard.from_config(config, clock=lambda: now)
    guard.maybe_run()
    assert not old_recording.exists() and not pictures_old_recording.exists() and new_recording.exists()
    assert not any(p.exists() for p in old_clip) and all(p.exists() for p in new_clip)
    assert guard.deleted == {"recording": 2, "clip": 1}
    guard.maybe_run()                                            # paced: nothing more to do, nothing walked
    assert guard.deleted == {"recording": 2, "clip": 1}
    assert guard.min_free_bytes == 0 and GB == 1_000_000_000


def test_serve_on_a_full_disk_reports_it_resumes_when_space_returns_and_stops_cleanly(
        small_disk, demo_xml, demo_home, compiled_cache, moving_shapes_video, ffmpeg_stream):
    """`edge-har serve` of a live camera whose events land on a full disk: the state shows in /api/status
    and /metrics, writing resumes once a file is deleted, SIGTERM ends it with 0 and every line whole."""
    import signal
    import threading
    import urllib.request

    from conftest import free_port

    server = ffmpeg_stream(moving_shapes_video(250, 160, 120, seed=4))
    port = free_port()
    config = {"model": {"path": str(demo_xml)},
              "inference": {"precision": "f32", "cache_dir": str(compiled_cache)},
              "sampling": {"mode": "rolling", "stride": 8},
              "output": {"events": str(small_disk / "events.jsonl"), "summary": str(small_disk / "summary.json")},
              "http": {"host": "127.0.0.1", "port": port},
              # continuous: the recorder deletes nothing itself, age retention is the guard's
              "record": {"dir": str(small_disk.parent / "recordings" / "{camera}"), "continuous": True},
              "evidence": {"dir": str(small_disk.parent / "clips" / "{camera}")},
              "cameras": {"door": {"source": server.url()}}}
    config_path = small_disk.parent / "edge-har.yaml"
    config_path.write_text(yaml.safe_dump(config))
    # evidence past its retention (record 3 days, clips 30 days) beside some that is not
    now = datetime.now().timestamp()
    old_recording = put(small_disk.parent / "recordings" / "door" / "2020-01-01" / "1577880000.000.mp4", 10,
                        4 * 86400, now)
    new_recording = put(small_disk.parent / "recordings" / "door" / "2020-01-02" / "1577966400.000.mp4", 10,
                        2 * 86400, now)
    old_clip = clip_files(small_disk.parent / "clips" / "door" / "2020-01-01", "r-wash-1", 10, 31 * 86400, now)
    new_clip = clip_files(small_disk.parent / "clips" / "door" / "2020-01-02", "r-wash-2", 10, 29 * 86400, now)
    filler = fill(small_disk / "filler")
    env = {**os.environ, "EDGE_HAR_HOME": str(demo_home)}
    process = subprocess.Popen([sys.executable, "-m", "edge", "serve", "-c", str(config_path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    stderr_lines: list[str] = []
    seen = threading.Condition()

    def pump():
        for line in process.stderr:
            with seen:
                stderr_lines.append(line)
                seen.notify_all()

    threading.Thread(target=pump, daemon=True).start()

    def wait_for(text: str, timeout: float = 120) -> None:
        with seen:
            assert seen.wait_for(lambda: text in "".join(stderr_lines), timeout), "".join(stderr_lines)

    def get(path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.read().decode()

    try:
        wait_for("the disk is full")
        status = json.loads(get("/api/status"))
        assert status["storage"]["disk_full"] and status["cameras"]["door"]["events"]["disk_full"]
        assert status["cameras"]["door"]["events"]["lines_not_written"] >= 1
        metrics = get("/metrics")
        assert 'edgehar_disk_full{camera="door"} 1.0' in metrics
        # the housekeeping's first pass (it comes before the first clip is judged; polled to be sure)
        deadline = time.monotonic() + 60
        while json.loads(get("/api/status"))["storage"]["deleted"] != {"recording": 1, "clip": 1}:
            assert time.monotonic() < deadline, get("/api/status")
            time.sleep(0.1)
        assert 'edgehar_evidence_deleted_total{kind="clip"} 1.0' in get("/metrics")
        assert not old_recording.exists() and not any(p.exists() for p in old_clip)
        assert new_recording.exists() and all(p.exists() for p in new_clip)
        assert "edgehar_disk_free_bytes{" in metrics and 'edgehar_events_not_written_total{camera="door"}' in metrics
        filler.unlink()                                   # space returns
        wait_for("lines were not written")
        assert not json.loads(get("/api/status"))["storage"]["disk_full"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    text = "".join(stderr_lines)
    assert "Traceback" not in text and text.count("the disk is full") == 1, text
    [events] = [p for p in small_disk.iterdir() if p.name.startswith("events-")]   # serve rotates daily
    assert re.fullmatch(r"events-\d{4}-\d{2}-\d{2}\.jsonl", events.name)
    lines = parsed_lines(events)
    assert any("event" not in line for line in lines)      # predictions written after space returned
    assert json.loads((small_disk / "summary.json").read_text())["interrupted_by"] == "SIGTERM"


def test_a_sink_failing_on_every_event_is_one_error_line_not_one_per_event(caplog):
    from edge.engine.service import Service

    class FullDisk:
        def __init__(self):
            self.calls = 0

        def handle(self, event):
            self.calls += 1
            raise OSError(28, "No space left on device")

        def close(self):
            pass

    service = Service(config_from_mapping({}), mode="serve")
    sink = FullDisk()
    service.subscribe(sink)
    caplog.set_level(logging.INFO)
    for number in range(200):
        service.emit(gap(number))
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert sink.calls == 200 and errors == [
        "door: FullDisk failed on a gap event: [Errno 28] No space left on device"]
