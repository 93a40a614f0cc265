"""``edge-har eval`` on an annotated day: segments at each tIoU, checks, and ``--events`` = running the model.

Real OpenVINO on the colour test model; the expected numbers are worked out by hand from the scripts
(``support_eval``'s docstring and comments), not from eval's own output.
"""

from __future__ import annotations

import pytest
from support_activities import colour_model_xml  # noqa: F401  (fixture)
from support_eval import DAY_RULES, edge_har, make_day, read_json, write_config


@pytest.fixture(scope="module")
def day(colour_model_xml, compiled_cache, tmp_path_factory):
    """(folder, config, numbers of eval running the model)."""
    folder = make_day(tmp_path_factory.mktemp("day"))
    config = write_config(folder / "cfg.yaml", colour_model_xml, compiled_cache, rules=DAY_RULES)
    result = edge_har("eval", folder, "-c", config, "--json", folder / "eval.json", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder, config, read_json(folder / "eval.json"), result.stdout


def row(tp, fp, fn, precision, recall, f1):
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": f1}


def test_segments_at_each_tiou(day):
    _, _, numbers, _ = day
    assert set(numbers) == {"segments", "checks", "model"}  # no clips: that truth does not exist here
    segments = numbers["segments"]
    assert set(segments) == {"0.1", "0.25", "0.5"}
    for threshold in ("0.1", "0.25"):
        assert segments[threshold]["handwash"] == row(3, 0, 0, 1.0, 1.0, 1.0)
    # the a.mp4 [8, 12] wash overlaps its prediction at 0.32: not a match at 0.5
    assert segments["0.5"]["handwash"] == row(2, 1, 1, 0.666667, 0.666667, 0.666667)
    for threshold in ("0.1", "0.25", "0.5"):
        assert segments[threshold]["smoking"] == row(1, 0, 1, 1.0, 0.5, 0.666667)
        assert segments[threshold]["food_prep"] == row(0, 1, 0, 0.0, None, None)


def test_checks_sensitivity_specificity_delay(day):
    _, _, numbers, _ = day
    checks = numbers["checks"]
    assert checks["wash-3s"] == {"tp": 1, "fp": 1, "fn": 0, "tn": 1, "sensitivity": 1.0, "specificity": 0.5,
                                 "mean_delay_s": pytest.approx(1.0, abs=1e-6)}
    assert checks["no-smoking"] == {"tp": 1, "fp": 0, "fn": 1, "tn": 1, "sensitivity": 0.5, "specificity": 1.0,
                                    "mean_delay_s": pytest.approx(0.38, abs=1e-6)}


def test_the_terminal_table(day):
    _, _, _, stdout = day
    assert "segments, matched at each temporal IoU" in stdout and "checks (a failed check is the positive)" in stdout
    assert "wash-3s" in stdout and "handwash" in stdout


def test_a_tight_check_tolerance_misses_the_late_alert(day):
    folder, config, _, _ = day
    result = edge_har("eval", folder, "-c", config, "--json", folder / "tight.json", "--check-tolerance-s", "0.5",
                      cwd=folder)
    assert result.returncode == 0, result.stderr
    wash = read_json(folder / "tight.json")["checks"]["wash-3s"]
    # b.mp4's failure comes 1.0 s after the auditor's: a miss (FN) and a false alarm (FP) at 0.5 s
    assert (wash["tp"], wash["fn"], wash["fp"]) == (0, 1, 2)


def test_events_of_a_recorded_run_give_the_same_numbers(day, tmp_path):
    folder, config, numbers, _ = day
    recorded = tmp_path / "events"
    recorded.mkdir()
    for name in ("a.mp4", "b.mp4"):
        result = edge_har("run", "-c", config, "--source", folder / name, "--events",
                          recorded / f"{name}.jsonl", "--set", "output.include_scores=true",
                          "--set", "output.progress=false", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    result = edge_har("eval", folder, "-c", config, "--events", recorded, "--json", tmp_path / "from-events.json",
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert read_json(tmp_path / "from-events.json") == numbers
    # a glob names the same files
    result = edge_har("eval", folder, "-c", config, "--events", str(recorded / "*.jsonl"), "--json",
                      tmp_path / "glob.json", "--sweep", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    swept = read_json(tmp_path / "glob.json")
    assert {key: swept[key] for key in numbers} == numbers
    # the colour model's scores are ~1 or ~0: every min_score does as well, and gap_s 0.5 already joins
    # the clips of one colour, so the best point changes no segment and no check
    assert swept["sweep"]["handwash"]["best"] == {"min_score": 0.5, "gap_s": 0.5, "f1": 0.666667,
                                                  "precision": 0.666667, "recall": 0.666667}
    assert swept["sweep"]["food_prep"]["best"] is None  # no true food_prep: no F1 anywhere
    assert swept["sweep_checks"] == numbers["checks"]
