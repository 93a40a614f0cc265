"""The live recorder (edge.evidence.record) against real ffmpeg streams on 127.0.0.1.

Oracles: the H.264 file the stream serves, demuxed by PyAV (its packets' NAL units, which a remux into
MP4 keeps bit for bit: only the start codes become lengths); ffprobe and PyAV decoding every segment.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from pathlib import Path

import av
import pytest
from conftest import free_port
from support_sources import FFPROBE, CopyStream, copy_stream, h264_video, needs_ffmpeg  # noqa: F401  (fixtures)

from edge.evidence.record import Recorder, TimedPacket, build_recorders
from edge.health import CameraState
from edge.sources import StreamSource
from edge.sources.base import ReconnectPolicy

QUICK = ReconnectPolicy(attempts=100, delay_s=0.1, max_delay_s=0.3, give_up=False)


@pytest.fixture(scope="module")
def clip_ts(tmp_path_factory):
    """12 s of 320x240 H.264 at 25 fps, a keyframe every 25 frames, B-frames, in MPEG-TS: no test reads
    past its end (ffmpeg -stream_loop loses a B-frame file's first keyframe at the loop point)."""
    needs_ffmpeg()
    from support_sources import encode_h264

    from edge.synthetic import write_moving_shapes_video

    folder = tmp_path_factory.mktemp("record-clip")
    raw = write_moving_shapes_video(folder / "raw.avi", 300, 320, 240, fps=25.0, codec="MJPG")
    return encode_h264(raw, folder / "clip.ts", gop=25, fps=25.0)


def wait_until(predicate, timeout_s: float = 60.0) -> bool:
    """Polls ``predicate`` (a state the recorder reaches), bounded."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B (start codes) or MP4 (4-byte lengths) H.264 packet."""
    if data[:3] == b"\x00\x00\x01" or data[:4] == b"\x00\x00\x00\x01":
        return [unit.rstrip(b"\x00") for unit in re.split(b"\x00\x00\x01", data) if unit.rstrip(b"\x00")]
    units, at = [], 0
    while at < len(data):
        size = int.from_bytes(data[at:at + 4], "big")
        units.append(data[at + 4:at + 4 + size])
        at += 4 + size
    return units


def file_packets(path) -> list[list[bytes]]:
    with av.open(str(path)) as container:
        return [nal_units(bytes(packet)) for packet in container.demux(container.streams.video[0]) if packet.size]


def segment_packets(path) -> list[tuple[list[bytes], int, int, bool]]:
    with av.open(str(path)) as container:
        return [(nal_units(bytes(packet)), packet.pts, packet.dts, packet.is_keyframe)
                for packet in container.demux(container.streams.video[0]) if packet.size]


def assert_same_as_source(recorded: list[list[bytes]], source: list[list[bytes]]) -> None:
    """``recorded`` is a run of the looped source's packets, unit for unit, byte for byte."""
    assert recorded
    start = source.index(recorded[0])
    for offset, units in enumerate(recorded):
        assert units == source[(start + offset) % len(source)], f"packet {offset} differs"


def decodes_cleanly(path) -> int:
    """Every packet of ``path`` decodes (ffprobe says nothing; PyAV gives one frame per packet): frames."""
    probe = subprocess.run([FFPROBE, "-v", "error", "-count_frames", "-show_entries", "stream=nb_read_frames",
                            "-of", "csv=p=0", str(path)], capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0 and probe.stderr.strip() == "", probe.stderr
    with av.open(str(path)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == int(probe.stdout.strip()) == len(segment_packets(path))
    return frames


def record_from_tap(recorder: Recorder, url: str, until) -> None:
    """The inference source's demuxer feeds the recorder (its tap) while frames are read, until ``until()``."""
    source = StreamSource(url, want_image=False, reconnect=QUICK)
    source.set_packet_tap(recorder)
    try:
        for count, _ in enumerate(source):
            if until() or count > 2000:
                break
    finally:
        source.close()


def test_segments_are_the_cameras_packets_remuxed(clip_ts, copy_stream, tmp_path):
    """Tapped from the inference source: each segment starts at a keyframe, decodes, lasts segment_s, is named
    by its wall time (its time 0), and its packets are the stream's, bit for bit."""
    server = copy_stream(clip_ts)
    recorder = Recorder("cam", tmp_path / "rec", segment_s=1.0, memory_s=2.0).start()
    before = time.time()
    record_from_tap(recorder, server.url(), lambda: recorder.segments_written >= 3)
    recorder.close()
    segments = recorder.segments()
    assert len(segments) >= 3 and recorder.status()["segments"] == len(segments)
    assert recorder.status()["bytes"] == sum(path.stat().st_size for _, path in segments)
    assert recorder.dropped_packets == 0
    source = file_packets(clip_ts)
    recorded = []
    for start_s, path in segments:
        assert path.parent.name == time.strftime("%Y-%m-%d", time.localtime(start_s))
        assert before - 1.0 < start_s < time.time()
        packets = segment_packets(path)
        assert packets[0][3] and packets[0][2] == 0  # a keyframe first, at the file's time 0
        assert decodes_cleanly(path) == len(packets)
        recorded += [units for units, *_ in packets]
    for (start_s, path), (next_s, _) in zip(segments, segments[1:]):
        assert len(segment_packets(path)) == 25  # one GOP (1 s) per segment at segment_s 1
        assert abs(next_s - start_s - 1.0) < 0.05
    assert_same_as_source(recorded, source)  # no packet lost, added or changed across the segments


def test_a_stream_that_drops_leaves_a_gap_not_a_corrupt_file(clip_ts, copy_stream, tmp_path):
    """record.source on the recorder's own connection: the server is killed mid-segment and comes back;
    the segment open at the drop is closed cleanly, the reconnection starts a new one at a keyframe."""
    server = copy_stream(clip_ts)
    recorder = Recorder("cam", tmp_path / "rec", segment_s=2.0, source=server.url(), reconnect=QUICK).start()
    states = []
    recorder.health.listen(lambda state, reason: states.append(state))
    try:
        assert wait_until(lambda: recorder.segments_written >= 1 and recorder.covered_until() is not None)
        assert wait_until(lambda: recorder.covered_until() > recorder.segments()[-1][0] + 2.5)  # mid-segment
        server.stop()
        assert wait_until(lambda: recorder.state is not CameraState.ONLINE)
        dropped_at = time.time()
        written = recorder.segments_written
        copy_stream(clip_ts, port=server.port)
        assert wait_until(lambda: recorder.segments_written >= written + 1)
    finally:
        recorder.close()
    assert CameraState.RECONNECTING in states and states.count(CameraState.ONLINE) >= 2
    segments = recorder.segments()
    before = [path for start, path in segments if start < dropped_at]
    after = [path for start, path in segments if start > dropped_at]
    assert before and after
    for _, path in segments:
        decodes_cleanly(path)
    source = file_packets(clip_ts)
    for path in (before[-1], after[0]):  # the one cut by the drop, the first after it
        assert_same_as_source([units for units, *_ in segment_packets(path)], source)
    assert segment_packets(after[0])[0][3]


@pytest.fixture(scope="module")
def recorded(clip_ts, tmp_path_factory):
    """A recorder that recorded ~6 s (segment_s 1, memory 2 s), its stream since gone; kept open for packets()."""
    needs_ffmpeg()
    server = CopyStream(clip_ts).start()
    recorder = Recorder("cam", tmp_path_factory.mktemp("recorded"), segment_s=1.0, memory_s=2.0).start()
    try:
        record_from_tap(recorder, server.url(), lambda: recorder.segments_written >= 5)
    finally:
        server.stop()
    assert wait_until(lambda: recorder.state is not CameraState.ONLINE)  # the last segment is closed
    yield recorder
    recorder.close()


def clip_from(packets, template, path: Path) -> Path:
    """What a clip cutter does: the packets muxed as they are into an MP4 (times from pts_s/dts_s)."""
    with av.open(str(path), "w", format="mp4") as output:
        stream = output.add_stream_from_template(template)
        origin, time_base = packets[0].dts_s, template.time_base
        for timed in packets:
            packet = timed.packet
            packet.time_base = time_base
            packet.pts = round((timed.pts_s - origin) / time_base)
            packet.dts = round((timed.dts_s - origin) / time_base)
            packet.stream = stream
            output.mux(packet)
    return path


@pytest.mark.parametrize("where", ["disk then memory", "memory", "disk"])
def test_packets_start_at_a_keyframe_and_span_the_range(recorded, clip_ts, tmp_path, where):
    segments = recorded.segments()
    newest = recorded._gops[-1][1][-1].dts_s  # the last packet in decode order
    memory_from = recorded._gops[0][1][0].pts_s
    assert segments[0][0] < memory_from - 2.0  # the first segments are only on disk
    start, end = {"disk then memory": (segments[0][0] + 1.3, newest - 0.2),
                  "memory": (newest - 0.5, newest - 0.1),
                  "disk": (segments[0][0] + 0.5, segments[1][0] + 0.5)}[where]
    in_memory = [(timed.packet.pts, timed.packet.dts) for _, gop in recorded._gops for timed in gop]
    with recorded.packets(start, end) as got:
        assert recorded._holds  # the span's segments are held while it is read
        packets = list(got)
        template = got.stream
    assert not recorded._holds
    assert all(isinstance(timed, TimedPacket) for timed in packets)
    assert packets[0].key and packets[0].pts_s <= start + 0.002
    keys_before = [timed for timed in packets if timed.key and timed.pts_s <= start + 0.002]
    assert keys_before[-1] is packets[0] or len(keys_before) == 1  # the last keyframe at or before start
    assert packets[-1].dts_s > end and all(timed.dts_s <= end for timed in packets[:-1])
    dts = [timed.dts_s for timed in packets]
    assert dts == sorted(dts) and max(b - a for a, b in zip(dts, dts[1:])) < 0.1  # no hole at disk → memory
    assert_same_as_source([nal_units(bytes(timed.packet)) for timed in packets], file_packets(clip_ts))
    clip = clip_from(packets, template, tmp_path / "clip.mp4")
    assert decodes_cleanly(clip) == len(packets)
    # memory's packets are handed out as copies: the clip changed their times, not the recorder's
    assert [(timed.packet.pts, timed.packet.dts) for _, gop in recorded._gops for timed in gop] == in_memory


def test_covered_until_follows_the_newest_packet(recorded):
    assert recorded.covered_until() >= recorded._gops[-1][1][-1].pts_s  # stream gone: now
    assert recorded.covered_until() <= time.time() + 0.01


def seed(directory: Path, wall_s: float) -> Path:
    path = directory / time.strftime("%Y-%m-%d", time.localtime(wall_s)) / f"{wall_s:.3f}.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"old")
    return path


@pytest.mark.parametrize("continuous", [False, True])
def test_retention(clip_ts, copy_stream, tmp_path, continuous):
    """continuous: the recorder deletes nothing (age is the storage guard's). Otherwise it keeps only what a
    clip may need (keep_s) and what a pending clip holds."""
    server = copy_stream(clip_ts)
    directory = tmp_path / "rec"
    now = time.time()
    two_days_old, an_hour_old = seed(directory, now - 2 * 86400), seed(directory, now - 3600)
    held_old = seed(directory, now - 1800)
    recorder = Recorder("cam", directory, segment_s=1.0, continuous=continuous, keep_s=2.0,
                        source=server.url(), reconnect=QUICK)
    recorder.hold(now - 1800, now - 1799.5)
    recorder.start()
    try:
        assert wait_until(lambda: recorder.segments_written >= 6)
    finally:
        recorder.close()
    ours = sorted(path for path in directory.rglob("*.mp4") if path not in (two_days_old, an_hour_old, held_old))
    assert held_old.exists()
    if continuous:
        assert two_days_old.exists() and an_hour_old.exists() and len(ours) == recorder.segments_written
    else:
        assert not two_days_old.exists() and not an_hour_old.exists()
        assert 1 <= len(ours) <= 4 < recorder.segments_written  # the newest ~keep_s + a segment or two
        assert {path for _, path in recorder.segments()} == {*ours, held_old}


def test_serve_records_a_camera_by_its_tap_and_an_unopenable_record_source_is_evidence_offline(
        clip_ts, copy_stream, demo_xml, compiled_cache, tmp_path, caplog):
    """`serve` with two live cameras. door: recorded from its inference source's demuxer (record.source
    null), its segments in /api/status and on disk. sink: its record.source answers nothing: its evidence is
    offline with the reason (said once), in /api/status, while inference on its own source carries on."""
    from edge.config import config_from_mapping
    from edge.engine.service import Service
    from edge.engine.signals import StopFlag

    nowhere = f"http://127.0.0.1:{free_port()}/main.ts"
    config = config_from_mapping({
        "model": {"path": str(demo_xml)}, "inference": {"cache_dir": str(compiled_cache)},
        "output": {"progress": False}, "http": {"enabled": False},
        "reconnect": {"attempts": 2, "delay_s": 0.1, "max_delay_s": 0.2, "open_timeout_s": 2.0},
        "cameras": {"sink": {"source": copy_stream(clip_ts).url(),
                             "record": {"source": nowhere, "dir": str(tmp_path / "sink")}},
                    "door": {"source": copy_stream(clip_ts).url(),
                             "record": {"continuous": True, "segment_s": 1.0, "dir": str(tmp_path / "door")}}}})
    stop = StopFlag()
    service = Service(config, mode="serve", stop=stop)
    predictions = {"sink": 0, "door": 0}
    seen = threading.Event()

    class Watch:
        def handle(self, event):
            if event.kind == "prediction":
                predictions[event.camera] += 1
                if min(predictions.values()) >= 3:
                    seen.set()

        def close(self):
            pass

    service.subscribe(Watch())
    worker = threading.Thread(target=service.run)
    worker.start()
    try:
        assert seen.wait(120)
        assert wait_until(lambda: service.recorders["sink"].state is CameraState.OFFLINE)
        assert wait_until(lambda: service.recorders["door"].segments_written >= 2)
        cameras = service.status()["cameras"]
        sink, door = cameras["sink"], cameras["door"]
        assert sink["state"] == "online" and door["state"] == "online"
        assert sink["recorder"]["state"] == "offline" and sink["recorder"]["segments"] == 0
        assert "record.source" in sink["recorder"]["reason"] and nowhere.split("/")[2] in sink["recorder"]["reason"]
        assert door["recorder"]["state"] == "online" and door["recorder"]["source"] == "camera"
        assert door["recorder"]["segments"] >= 2 and door["recorder"]["bytes"] > 0
        assert door["recorder"]["dropped_packets"] == 0
    finally:
        stop.request()
        worker.join(60)
    assert not worker.is_alive()
    assert min(predictions.values()) >= 3
    said = [r for r in caplog.records if "recording offline" in r.getMessage()]
    assert len(said) == 1 and "sink" in said[0].getMessage()
    assert not list((tmp_path / "sink").rglob("*.mp4"))
    recorded = []
    for path in sorted((tmp_path / "door").rglob("*.mp4")):  # closed at shutdown: every one whole
        decodes_cleanly(path)
        recorded += [units for units, *_ in segment_packets(path)]
    assert_same_as_source(recorded, file_packets(clip_ts))


def test_build_recorders_only_for_live_cameras_that_keep_pictures(clip_ts, tmp_path):
    from edge.config import config_from_mapping

    config = config_from_mapping({
        "cameras": {"file": {"source": str(clip_ts)},
                    "live": {"source": "rtsp://127.0.0.1:1/a", "record": {"dir": str(tmp_path)}},
                    "private": {"source": "rtsp://127.0.0.1:1/b", "privacy": {"pictures": False}},
                    "none": {"source": "rtsp://127.0.0.1:1/c", "evidence": {"clips": "none"}},
                    "always": {"source": "rtsp://127.0.0.1:1/d", "evidence": {"clips": "none"},
                               "record": {"continuous": True, "dir": str(tmp_path)}}}})
    recorders = build_recorders(config, "serve", {})
    assert set(recorders) == {"live", "always"}
    assert recorders["live"].state is CameraState.OFFLINE  # its source could not be opened: nothing to tap
    assert recorders["always"].continuous and not recorders["live"].continuous
    assert recorders["live"].keep_s >= 5 + 5 + 60 + 2 * 10


def test_a_full_inbox_drops_and_counts_then_resumes_at_a_keyframe(clip_ts, tmp_path, monkeypatch):
    """The tap never waits: with the recorder behind, packets are dropped and counted up to the next
    keyframe, and what is recorded still decodes (a gap, not a broken GOP)."""
    from edge.evidence import record

    monkeypatch.setattr(record, "INBOX_PACKETS", 20)
    recorder = Recorder("cam", tmp_path / "rec", segment_s=1.0)
    with av.open(str(clip_ts)) as container:
        stream = container.streams.video[0]
        packets = [packet for packet in container.demux(stream) if packet.size]
        assert [index for index, packet in enumerate(packets[:100]) if packet.is_keyframe] == [0, 25, 50, 75]
        recorder.connected(stream)
        for packet in packets[:60]:  # the recorder thread is not running yet: its inbox fills
            recorder.packet(packet)
        assert recorder.dropped_packets == 60 - 19  # the inbox holds "connected" and 19 packets
        recorder.start()
        assert wait_until(lambda: recorder._inbox.qsize() == 0)
        for packet in packets[60:]:  # now at the pace the recorder takes them
            recorder.packet(packet)
            deadline = time.monotonic() + 10.0
            while recorder._inbox.qsize() and time.monotonic() < deadline:
                time.sleep(0.001)
        recorder.disconnected("end of file")
    recorder.close()
    assert recorder.dropped_packets == 41 + 15  # and 60..74: up to the keyframe at 75
    source = [nal_units(bytes(packet)) for packet in packets]
    recorded = []
    for _, path in recorder.segments():
        assert segment_packets(path)[0][3]
        decodes_cleanly(path)
        recorded += [units for units, *_ in segment_packets(path)]
    assert recorded == source[:19] + source[75:]


KILLED_RECORDER = """
import sys, time
from edge.evidence.record import Recorder
recorder = Recorder("cam", sys.argv[2], segment_s=60.0, source=sys.argv[1]).start()
while not (recorder.covered_until() and recorder._segment is not None
           and recorder.covered_until() > recorder._segment.start_s + 2.5):
    time.sleep(0.05)
print("ready", flush=True)
time.sleep(600)
"""


def test_a_killed_recorder_leaves_a_playable_file(clip_ts, copy_stream, tmp_path):
    """Fragmented MP4, each fragment written whole: SIGKILL in the middle of a segment leaves a file that
    decodes without an error, with the stream's packets up to the last whole GOP."""
    import os
    import sys

    server = copy_stream(clip_ts)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]),
                                                         os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", KILLED_RECORDER, server.url(), str(tmp_path / "rec")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
    finally:
        child.kill()
        child.wait(10)
    [path] = list((tmp_path / "rec").rglob("*.mp4"))
    frames = decodes_cleanly(path)
    assert frames >= 50  # two whole GOPs at least
    assert_same_as_source([units for units, *_ in segment_packets(path)], file_packets(clip_ts))
