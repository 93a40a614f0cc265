"""The WebVTT track: parses strictly, its cue times are the prediction records' times."""

import json
import re
import subprocess

import pytest

from edge.events import from_json_dict
from edge.sinks import Sink, SinkError
from edge.sinks.subtitles import SubtitleSink

FPS = 25.0
TIMING = re.compile(r"^(\d{2,}):([0-5]\d):([0-5]\d)\.(\d{3}) --> (\d{2,}):([0-5]\d):([0-5]\d)\.(\d{3})(?: (.*))?$")
SETTING = re.compile(r"^(line:-?\d+%?|position:\d+(\.\d+)?%|align:(start|center|end|left|right)|"
                     r"size:\d+(\.\d+)?%|vertical:(rl|lr)|region:\S+)$")


def _seconds(h, m, s, ms) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_webvtt(text: str) -> list[dict]:
    """A strict reader for the subset of WebVTT we write (W3C WebVTT §4): header, then
    blank-line-separated cues of [id], timing line with settings, one or more text lines.
    Asserts on anything else; returns [{id, start, end, settings, lines}]."""
    assert text.startswith("WEBVTT\n\n") or text == "WEBVTT\n", text[:20]
    assert text.endswith("\n")
    cues = []
    for block in text[len("WEBVTT\n"):].split("\n\n"):
        block = block.strip("\n")
        if not block:
            continue
        lines = block.split("\n")
        ident = None
        if "-->" not in lines[0]:
            ident = lines.pop(0)
        match = TIMING.match(lines[0])
        assert match, f"bad timing line {lines[0]!r}"
        start, end = _seconds(*match.group(1, 2, 3, 4)), _seconds(*match.group(5, 6, 7, 8))
        settings = (match.group(9) or "").split()
        assert all(SETTING.match(s) for s in settings), settings
        body = lines[1:]
        assert body and all(body), f"cue without text: {block!r}"
        for line in body:
            assert "-->" not in line and "<" not in line
            assert not re.search(r"&(?!amp;|lt;|gt;)", line), line
        assert end > start, block
        if cues:
            assert start > cues[-1]["start"], "cue start times must increase"
        cues.append({"id": ident, "start": start, "end": end, "settings": settings, "lines": body})
    ids = [c["id"] for c in cues if c["id"] is not None]
    assert len(ids) == len(set(ids)), "cue identifiers must be unique"
    return cues


def prediction(clip_index, start_frame, clip_len=16, label="washing hands", score=0.87, untrained=False,
               gated=False, camera="main"):
    end_frame = start_frame + clip_len - 1
    record = {"source": "in.mp4", "clip_index": clip_index, "start_frame": start_frame, "end_frame": end_frame,
              "start_time_s": round(start_frame / FPS, 6), "end_time_s": round(end_frame / FPS, 6),
              "wall_time": "2026-01-01T12:00:00.000+00:00", "label": label, "score": score,
              "top_k": [{"label": label, "score": score}], "latency_ms": {}, "model": "m",
              "untrained": untrained, "camera": camera, "run_id": "r1"}
    if gated:
        record.update(gated=True, label=None, score=None, top_k=[])
    return from_json_dict(record)


def activity(kind, ident, start_s, end_s=None, name="handwash", camera="main"):
    return from_json_dict({"event": "activity", "type": kind, "id": ident, "camera": camera,
                           "activity": name, "start_time_s": start_s, "end_time_s": end_s,
                           "duration_s": None, "peak_score": 0.9, "time_base": "media",
                           "wall_time": "2026-01-01T12:00:00.000+00:00", "run_id": "r1"})


def write(path, events, **kwargs):
    sink = SubtitleSink(path, **kwargs)
    for event in events:
        sink.handle(event)
    sink.close()
    return parse_webvtt(path.read_text(encoding="utf-8"))


def test_is_a_sink(tmp_path):
    sink = SubtitleSink(tmp_path / "a.vtt")
    assert isinstance(sink, Sink)
    sink.close()
    sink.close()  # idempotent
    assert parse_webvtt((tmp_path / "a.vtt").read_text()) == []


def test_batch_cues_are_the_clip_spans(tmp_path):
    events = [prediction(k, 16 * k) for k in range(5)]
    cues = write(tmp_path / "a.vtt", events)
    assert len(cues) == 5
    for cue, event in zip(cues, events):
        record = event.to_json_dict()
        assert cue["start"] == pytest.approx(record["start_time_s"], abs=5e-4)
        # until one frame after the clip's last frame, which is where the next clip starts
        assert cue["end"] == pytest.approx(record["end_time_s"] + 1 / FPS, abs=5e-4)
        assert cue["lines"] == ["washing hands 0.87"]
        assert cue["settings"] == ["line:0", "position:0%", "align:start"]
        assert cue["id"] == str(record["clip_index"])


def test_rolling_cues_tile_without_overlap(tmp_path):
    stride = 4
    events = [prediction(k, stride * k, label=f"label{k}") for k in range(6)]
    cues = write(tmp_path / "a.vtt", events)
    assert [c["lines"][0] for c in cues] == [f"label{k} 0.87" for k in range(6)]
    for k, cue in enumerate(cues):
        assert cue["start"] == pytest.approx(events[k].to_json_dict()["start_time_s"], abs=5e-4)
        if k + 1 < len(cues):  # until the next clip starts
            assert cue["end"] == pytest.approx(events[k + 1].to_json_dict()["start_time_s"], abs=5e-4)
            assert cue["end"] <= cues[k + 1]["start"]
    assert cues[-1]["end"] == pytest.approx(events[-1].to_json_dict()["end_time_s"] + 1 / FPS, abs=5e-4)


def test_gated_cue_says_still_and_untrained_is_tagged(tmp_path):
    cues = write(tmp_path / "a.vtt", [prediction(0, 0, untrained=True), prediction(1, 16, gated=True, untrained=True)])
    assert cues[0]["lines"] == ["washing hands 0.87", "(untrained demo model)"]
    assert cues[1]["lines"] == ["still", "(untrained demo model)"]


def test_a_learned_heads_best_class_is_the_second_line(tmp_path):
    from dataclasses import replace

    event = replace(prediction(0, 0), custom_top_k=(("gloves_on", 0.912), ("sanitise", 0.05)))
    assert write(tmp_path / "a.vtt", [event])[0]["lines"] == ["washing hands 0.87", "custom:gloves_on 0.91"]


def test_a_gap_ends_the_cue_at_its_own_last_frame(tmp_path):
    events = [prediction(0, 0), from_json_dict({"event": "gap", "camera": "main"}), prediction(1, 400)]
    cues = write(tmp_path / "a.vtt", events)
    assert cues[0]["end"] == pytest.approx(15 / FPS + 1 / FPS, abs=5e-4)
    assert cues[1]["start"] == pytest.approx(400 / FPS, abs=5e-4)


def test_activity_line_with_its_duration(tmp_path):
    events = [prediction(0, 0),                                   # 0.00–0.60 s, before any activity
              prediction(1, 16), activity("start", "a1", 0.64),   # judged on clip 1
              prediction(2, 32),                                  # still open: 1.84 - 0.64 = 1.2 s
              prediction(3, 48), activity("end", "a1", 0.64, 1.9),
              prediction(4, 64)]                                  # ended: no activity
    cues = write(tmp_path / "a.vtt", events)
    assert cues[0]["lines"] == ["washing hands 0.87"]             # no activity seen yet when written
    assert cues[1]["lines"] == ["washing hands 0.87", "handwash 1 s"]   # 1.24 - 0.64 = 0.6 → "1 s"
    assert cues[2]["lines"] == ["washing hands 0.87", "handwash 1 s"]   # 1.84 - 0.64 = 1.2
    assert cues[3]["lines"] == ["washing hands 0.87", "handwash 1 s"]   # ended at 1.9: 1.26
    assert cues[4]["lines"] == ["washing hands 0.87", "no activity"]


def test_long_activity_duration(tmp_path):
    events = [prediction(0, 0), activity("start", "a1", 0.0), prediction(10, 300)]  # 12.6 s after start
    cues = write(tmp_path / "a.vtt", events)
    assert cues[-1]["lines"][1] == "handwash 13 s"


def test_cues_are_readable_while_the_file_is_open(tmp_path):
    path = tmp_path / "a.vtt"
    sink = SubtitleSink(path)
    for k in range(3):
        sink.handle(prediction(k, 16 * k))
    # A killed process leaves every cue whose end was known: the first two.
    assert len(parse_webvtt(path.read_text())) == 2
    sink.close()
    assert len(parse_webvtt(path.read_text())) == 3


def test_camera_filter_escaping_and_hours(tmp_path):
    events = [prediction(0, 0, label="rock & roll <dance>", camera="yard"),
              prediction(1, 16, camera="sink"),
              prediction(2, int(101 * 3600 * FPS), camera="yard")]
    cues = write(tmp_path / "a.vtt", events, camera="yard")
    assert [c["id"] for c in cues] == ["0", "2"]
    assert cues[0]["lines"] == ["rock &amp; roll &lt;dance&gt; 0.87"]
    assert cues[1]["start"] == pytest.approx(101 * 3600, abs=5e-4)


def test_ffmpeg_reads_the_same_cue_times(tmp_path):
    path = tmp_path / "a.vtt"
    events = [prediction(k, 4 * k) for k in range(4)]
    cues = write(path, events)
    done = subprocess.run(["ffprobe", "-v", "error", "-show_packets", "-of", "json", str(path)],
                          capture_output=True, text=True, check=True, timeout=60)
    packets = [(float(p["pts_time"]), float(p["duration_time"])) for p in json.loads(done.stdout)["packets"]]
    assert [(round(s, 3), round(s + d, 3)) for s, d in packets] == \
        [(round(c["start"], 3), round(c["end"], 3)) for c in cues]


def test_unwritable_path(tmp_path):
    blocker = tmp_path / "plain-file"
    blocker.write_text("x")
    with pytest.raises(SinkError):
        SubtitleSink(blocker / "a.vtt")
