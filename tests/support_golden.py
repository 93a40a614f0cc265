"""The golden events.jsonl: one small deterministic run whose lines must never change.

``tests/data/golden_events.jsonl`` was written by ``python tests/support_golden.py`` on main before
events became typed classes (the oracle); ``test_golden_events.py`` runs the same input through
today's code and compares line by line, apart from what varies between runs (``normalise``).

The input: the colour test model (support_activities) on a scripted 160×120 video in batch mode, one
colour per 16-frame clip, with the still-scene gate on, and a stream gap injected after one clip
(a file never drops, so the file source is wrapped to yield one ``Gap``). It covers prediction lines,
gated prediction lines, a gap line, activity start/update/end (ended, stream gap, end of stream) and
checks that pass, fail and stay undecided.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import threading
from pathlib import Path

import cv2
import yaml

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from support_activities import ACTIVITIES_YAML, FPS, SIZE, save_test_model, scripted_frame  # noqa: E402

GOLDEN = HERE / "data" / "golden_events.jsonl"
CLIP = 16
# (colour, clips, moving): each entry is a whole number of 16-frame clips; "still" clips do not move.
SCRIPT = [
    ("red", 5, True),      # handwash 1: start, updates, then ends (long enough)
    ("grey", 4, True),     # nothing: handwash ends after gap_s
    ("blue", 2, True),     # food_prep starts: the sequence passes
    ("grey", 3, False),    # a still scene: gated clips; food_prep ends
    ("green", 2, True),    # smoking starts: forbidden fails; the gap below ends it
    ("red", 2, True),      # handwash 2 starts within 5 s of smoking's end: followed_by passes
    ("grey", 4, True),     # handwash 2 ends too short: min_duration fails
    ("green", 1, True),    # smoking again, open when the file ends: followed_by undecided
]
GAP_AFTER_FRAME = (5 + 4 + 2 + 3 + 2) * CLIP - 1   # after the last green frame of the first smoking
GAP_SECONDS, GAP_REASON = 1.5, "read timeout (golden test)"
GAP_WAIT_S = 120.0   # an upper bound only: the line comes as soon as the clip is inferred
RULES = [
    {"name": "wash-2s", "kind": "min_duration", "activity": "handwash", "seconds": 2},
    {"name": "wash-before-prep", "kind": "sequence", "steps": ["handwash", "food_prep"], "within_s": 600},
    {"name": "no-smoking", "kind": "forbidden", "activity": "smoking"},
    {"name": "wash-after-smoking", "kind": "followed_by", "first": "smoking", "then": "handwash", "within_s": 5},
]
VARYING = ("wall_time", "run_id")   # replaced by a placeholder; latency_ms numbers too (see normalise)
# Release 3 gives a check line an id and its evidence (null until the clip line follows) and nothing else;
# the golden lines predate them, so they are compared without these keys (their place is tested in test_events).
RELEASE_3_CHECK_KEYS = ("id", "clip", "clip_url", "snapshot", "snapshot_url")


def write_video(path) -> Path:
    """The scripted video (mp4v, 25 fps, 160×120): solid colours, a moving square unless still."""
    path = Path(path)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
    if not writer.isOpened():
        raise OSError(f"cannot write {path}")
    index = 0
    try:
        for colour, clips, moving in SCRIPT:
            still_at = index
            for _ in range(clips * CLIP):
                writer.write(scripted_frame(colour, index if moving else still_at))
                index += 1
    finally:
        writer.release()
    return path


def config_mapping(video, model_xml, out: Path, cache) -> dict:
    activities = {name: dict(spec) for name, spec in ACTIVITIES_YAML.items()}
    activities["handwash"]["update_s"] = 1.0
    return {
        "source": str(video),
        "model": {"path": str(Path(model_xml).resolve())},
        "inference": {"cache_dir": str(Path(cache).resolve()), "precision": "f32"},
        "sampling": {"mode": "batch"},
        "gating": {"min_motion": 0.2},
        "output": {"events": str(out / "events.jsonl"), "include_scores": False, "progress": False,
                   "overwrite": True},
        "evidence": {"clips": "none"},   # the golden lines predate evidence (release 3)
        "activities": activities,
        "rules": RULES,
    }


@contextlib.contextmanager
def gap_in_files():
    """File sources yield one ``Gap`` after frame ``GAP_AFTER_FRAME`` (as a live stream that dropped).

    A lane reports a gap when it arrives, before clips still being inferred, so the reader holds the gap
    back until the prediction of the clip ending at that frame is written: the lines' order is then the
    same in every run. (It recognises that line on both sides of the typed-events change, so the golden
    file could be written by main.)
    """
    from edge.sinks.jsonl import EventWriter
    from edge.sources import FileSource
    from edge.sources.base import Gap

    original, original_handle = FileSource.__iter__, EventWriter.handle
    written = threading.Event()

    def handle(self, event):
        original_handle(self, event)
        end_frame = getattr(event, "end_frame", None)
        if end_frame is None and isinstance(getattr(event, "record", None), dict):
            end_frame = event.record.get("end_frame")
        if end_frame == GAP_AFTER_FRAME:
            written.set()

    def iterate(self):
        items = original(self)   # the source is its own iterator: take items with next(), not a for loop

        def with_gap():
            while True:
                try:
                    item = next(items)
                except StopIteration:
                    return
                yield item
                if getattr(item, "index", None) == GAP_AFTER_FRAME:
                    if not written.wait(GAP_WAIT_S):
                        raise RuntimeError(f"no prediction line for the clip ending at frame {GAP_AFTER_FRAME}")
                    yield Gap(GAP_AFTER_FRAME, GAP_SECONDS, GAP_REASON)

        return with_gap()

    FileSource.__iter__, EventWriter.handle = iterate, handle
    try:
        yield
    finally:
        FileSource.__iter__, EventWriter.handle = original, original_handle


def run_golden(folder, model_xml, cache) -> list[str]:
    """Run ``edge-har run -c`` (in this process, for the injected gap) on the script; returns the lines."""
    from edge.cli import main

    folder = Path(folder)
    write_video(folder / "golden.mp4")
    config = folder / "golden.yaml"
    # Relative paths, run from the folder: the lines' "source" is then the same wherever it runs.
    config.write_text(yaml.safe_dump(config_mapping("golden.mp4", model_xml, Path("."), cache), sort_keys=False),
                      encoding="utf-8")
    with gap_in_files(), contextlib.chdir(folder):
        code = main(["run", "-c", "golden.yaml"])
    if code not in (0, None):
        raise RuntimeError(f"edge-har run exited {code}")
    return (folder / "events.jsonl").read_text(encoding="utf-8").splitlines()


def normalise(line: str) -> str:
    """A line with what varies between runs replaced: ``wall_time``, ``run_id`` and every number in
    ``latency_ms`` (kept: which latencies are null). Keys and their order are kept."""
    record = json.loads(line)
    if record.get("event") == "check":
        record = {key: value for key, value in record.items() if key not in RELEASE_3_CHECK_KEYS}
    for key in VARYING:
        if key in record:
            record[key] = f"<{key}>"
    if isinstance(record.get("latency_ms"), dict):
        record["latency_ms"] = {stage: None if value is None else "<ms>"
                                for stage, value in record["latency_ms"].items()}
    return json.dumps(record, ensure_ascii=False, allow_nan=False)


def main() -> None:
    with tempfile.TemporaryDirectory() as temp:
        temp = Path(temp)
        model_xml = save_test_model(temp / "model")
        lines = run_golden(temp, model_xml, temp / "cache")
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    print(f"wrote {len(lines)} lines to {GOLDEN}")
    with tempfile.TemporaryDirectory() as temp:
        GOLDEN_REPLAY.write_text(replay_golden(temp), encoding="utf-8")
    print(f"wrote {GOLDEN_REPLAY}")



GOLDEN_REPLAY = HERE / "data" / "golden_replay.jsonl"


def replay_golden(folder) -> str:
    """``edge-har replay`` of the golden events with the golden config: what it prints (stdout)."""
    import io
    from contextlib import redirect_stdout

    from edge.cli import main

    folder = Path(folder)
    config = folder / "golden.yaml"
    config.write_text(yaml.safe_dump(config_mapping("golden.mp4", folder / "absent.xml", Path("."), folder),
                                     sort_keys=False), encoding="utf-8")
    out = io.StringIO()
    with redirect_stdout(out), contextlib.chdir(folder):
        code = main(["replay", str(GOLDEN), "-c", "golden.yaml"])
    if code != 0:
        raise RuntimeError(f"edge-har replay exited {code}")
    return out.getvalue()


if __name__ == "__main__":
    main()
