"""The JSON lines do not change: a golden events.jsonl written on main before events were typed.

Oracle: ``tests/data/golden_events.jsonl``, written by ``python tests/support_golden.py`` from the
code before the typed events (see support_golden for the input and what it covers). The same input
runs through today's code; every line must be identical, keys in the same order, apart from
``wall_time``, ``run_id`` and the ``latency_ms`` numbers (``support_golden.normalise``).
"""

from __future__ import annotations

import json

from support_activities import colour_model_xml  # noqa: F401  (fixture)
from support_golden import GOLDEN, normalise, run_golden


def test_the_lines_equal_the_golden_file(colour_model_xml, compiled_cache, tmp_path):
    want = GOLDEN.read_text(encoding="utf-8").splitlines()
    got = run_golden(tmp_path, colour_model_xml, compiled_cache)
    kinds = {json.loads(line).get("event", "prediction") for line in want}
    assert kinds == {"prediction", "gap", "activity", "check"}
    assert any(json.loads(line).get("gated") for line in want)
    assert [normalise(line) for line in got] == [normalise(line) for line in want]


def test_normalise_keeps_everything_but_what_varies():
    line = ('{"source": "a.mp4", "wall_time": "2026-01-01T00:00:00+00:00", "latency_ms": {"preprocess": 1.5, '
            '"infer": null}, "run_id": "abc", "label": "x"}')
    assert normalise(line) == ('{"source": "a.mp4", "wall_time": "<wall_time>", "latency_ms": {"preprocess": "<ms>", '
                               '"infer": null}, "run_id": "<run_id>", "label": "x"}')


def test_replay_prints_what_it_printed_before(tmp_path):
    """``edge-har replay`` of the golden events prints exactly what main printed (nothing varies: the
    recorded lines give every time and the run id). Oracle: tests/data/golden_replay.jsonl."""
    from support_golden import GOLDEN_REPLAY, replay_golden

    got = replay_golden(tmp_path).splitlines()
    want = GOLDEN_REPLAY.read_text(encoding="utf-8").splitlines()
    assert [without_release_3(line) for line in got] == [without_release_3(line) for line in want]
    assert all(json.loads(line).get("id") for line in got if json.loads(line).get("event") == "check")


def without_release_3(line: str) -> str:
    """The line without the keys release 3 adds to check lines (``support_golden.RELEASE_3_CHECK_KEYS``)."""
    from support_golden import RELEASE_3_CHECK_KEYS

    record = json.loads(line)
    if record.get("event") == "check":
        record = {key: value for key, value in record.items() if key not in RELEASE_3_CHECK_KEYS}
    return json.dumps(record, ensure_ascii=False)
