"""``draw_timeline`` / ``edge-har report``: the PNG read back, colours checked at known times.

Oracle: pixel positions computed here from the geometry documented in
edge/report.py (x = LEFT + (t − t0)/(t1 − t0) × plot width; row i centred at
TOP + (i + ½) × ROW), and the colours the module documents.
"""

from __future__ import annotations

import json

import cv2
import pytest

from edge import cli
from edge.report import draw_timeline

WIDTH, LEFT, RIGHT, TOP, ROW, BOTTOM = 1600, 240, 40, 50, 40, 60
BAR = (0x4C, 0x72, 0xB0)
GREEN = (0x2C, 0xA0, 0x2C)
RED = (0xD6, 0x27, 0x28)
GREY = (0x7F, 0x7F, 0x7F)
WHITE = (255, 255, 255)


def seg(kind, camera, activity, number, start, end=None, base="media", duration=None):
    record = {"event": "activity", "type": kind, "id": f"{camera}-{activity}-{number}", "camera": camera,
              "activity": activity, "start_time_s": start, "end_time_s": end,
              "duration_s": duration if duration is not None else (end - start if end is not None else 0.0),
              "peak_score": 0.9, "time_base": base, "wall_time": "w", "run_id": "r"}
    if kind == "end":
        record["reason"] = "ended"
    return record


def check(rule, camera, passed, time_s, ids, base="media"):
    return {"event": "check", "rule": rule, "kind": "min_duration", "camera": camera, "passed": passed,
            "reason": "…", "time_s": time_s, "time_base": base, "activity_ids": ids, "wall_time": "w", "run_id": "r"}


def colour_at(image, t, row, t0, t1):
    """RGB at time t in row `row`, from the documented geometry."""
    x = LEFT + (t - t0) / (t1 - t0) * (WIDTH - LEFT - RIGHT)
    y = TOP + (row + 0.5) * ROW
    b, g, r = image[int(y), int(x)]
    return int(r), int(g), int(b)


def close(actual, expected, tolerance=6):
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected))


RECORDS = [
    {"camera": "sink", "end_time_s": 0.6, "wall_time": "w"},   # a prediction line: widens nothing here
    seg("start", "sink", "handwash", 1, 10.0),
    seg("update", "sink", "handwash", 1, 10.0, duration=5.0),
    seg("end", "sink", "handwash", 1, 10.0, 30.0),
    check("wash-20s", "sink", True, 30.0, ["sink-handwash-1"]),
    seg("start", "sink", "food_prep", 1, 40.0),
    check("wash-before-prep", "sink", False, 45.0, ["sink-handwash-1", "sink-food_prep-1"]),
    seg("end", "sink", "food_prep", 1, 40.0, 50.0),
    seg("start", "yard", "smoking", 1, 70.0),
    seg("end", "yard", "smoking", 1, 70.0, 72.0),
    check("wash-after-smoking", "yard", None, 80.0, ["yard-smoking-1"]),
]


def test_media_timeline_colours_at_known_times(tmp_path):
    path = tmp_path / "timeline.png"
    timeline = draw_timeline(RECORDS, path, time_range=(0.0, 100.0))
    image = cv2.imread(str(path))
    assert image.shape == (TOP + 3 * ROW + BOTTOM, WIDTH, 3)
    assert timeline.rows == (("sink", "handwash"), ("sink", "food_prep"), ("yard", "smoking"))
    at = lambda t, row: colour_at(image, t, row, 0.0, 100.0)  # noqa: E731
    assert close(at(20.0, 0), BAR)        # handwash 10–30
    assert close(at(11.0, 0), BAR) and close(at(29.0, 0), BAR)
    assert close(at(5.0, 0), WHITE) and close(at(35.0, 0), WHITE)
    assert close(at(30.0, 0), GREEN)      # wash-20s passed at the end of the wash
    assert close(at(45.0, 1), RED)        # the failed check sits on the row of the segment judged last
    assert close(at(42.0, 1), BAR) and close(at(55.0, 1), WHITE)
    assert close(at(20.0, 1), WHITE)      # no food_prep then
    assert close(at(71.0, 2), BAR) and close(at(80.0, 2), GREY) and close(at(90.0, 2), WHITE)


def test_default_range_spans_the_records_and_open_segments_run_to_the_end(tmp_path):
    records = [seg("start", "cam", "smoking", 1, 100.0), check("no-smoking", "cam", False, 100.0, ["cam-smoking-1"]),
               seg("start", "cam", "handwash", 1, 110.0), seg("end", "cam", "handwash", 1, 110.0, 150.0),
               seg("update", "cam", "smoking", 1, 100.0, duration=60.0)]  # still open at 160
    path = tmp_path / "open.png"
    timeline = draw_timeline(records, path)
    assert (timeline.t0, timeline.t1) == pytest.approx((100.0 - 1.2, 160.0 + 1.2))  # 2 % of 60 s each side
    image = cv2.imread(str(path))
    at = lambda t, row: colour_at(image, t, row, 98.8, 161.2)  # noqa: E731
    assert close(at(100.0, 0), RED)
    assert close(at(130.0, 0), BAR) and close(at(161.0, 0), BAR) and close(at(99.0, 0), WHITE)
    assert close(at(105.0, 1), WHITE) and close(at(130.0, 1), BAR)


def test_wall_time_axis(tmp_path):
    t0 = 1795852800.0  # 2026-11-28 08:00:00 UTC
    records = [seg("start", "door", "handwash", 1, t0 + 600, base="wall"),
               seg("end", "door", "handwash", 1, t0 + 600, t0 + 1200, base="wall"),
               check("wash-20s", "door", True, t0 + 1200, ["door-handwash-1"], base="wall")]
    path = tmp_path / "wall.png"
    timeline = draw_timeline(records, path, time_range=(t0, t0 + 3600))
    assert timeline.time_base == "wall"
    image = cv2.imread(str(path))
    at = lambda t, row: colour_at(image, t, row, t0, t0 + 3600)  # noqa: E731
    assert close(at(t0 + 900, 0), BAR) and close(at(t0 + 1200, 0), GREEN) and close(at(t0 + 1800, 0), WHITE)


def test_mixed_time_bases_are_refused(tmp_path):
    with pytest.raises(ValueError, match="separate reports"):
        draw_timeline([seg("start", "a", "x", 1, 1.0), seg("start", "b", "x", 1, 1e9, base="wall")],
                      tmp_path / "x.png")


def test_cli_report(tmp_path, capsys):
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(r) + "\n" for r in RECORDS), encoding="utf-8")
    png = tmp_path / "out" / "day.png"
    assert cli.main(["report", str(events), "-o", str(png)]) == 0
    image = cv2.imread(str(png))
    assert image is not None and image.shape[1] == WIDTH
    # default range: 0.6 (the prediction line) to 80 (the last check), 2 % of 79.4 s more each side
    t0, t1 = 0.6 - 1.588, 80.0 + 1.588
    assert close(colour_at(image, 20.0, 0, t0, t1), BAR) and close(colour_at(image, 80.0, 2, t0, t1), GREY)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(RECORDS[1]) + "\n{oops\n", encoding="utf-8")
    assert cli.main(["report", str(bad), "-o", str(tmp_path / "bad.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.jsonl: line 2: not JSON" in err
