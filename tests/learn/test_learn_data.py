"""What learn learns from (``edge.learn.data``) and its one-line errors before any inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from support_activities import colour_model_xml  # noqa: F401  (fixture)
from support_eval import edge_har
from support_learn import make_clips

from edge.learn.data import (
    Example,
    LearnError,
    check_counts,
    examples_of,
    read_data,
    split_holdout,
)


def _error(result) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def _short_clips(root: Path, per_class: dict[str, int]) -> Path:
    return make_clips(root, per_class)


def test_annotated_videos_give_segment_examples_and_background_runs(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "annotations.csv").write_text("video,start_s,end_s,activity\na.mp4,1.0,3.0,wipe\n"
                                              "a.mp4,5.0,6.0,scan\n")
    truth = read_data(tmp_path, background="idle")
    video = (tmp_path / "a.mp4").resolve()
    # clips of 0.6 s every 0.64 s: [0, 0.6], [0.64, 1.24], ..., the 11th [6.4, 7.0]
    start = np.arange(11) * 0.64
    clips = {video: {"start_s": start, "end_s": start + 0.6}}
    examples, rows = examples_of(truth, clips, "idle")
    assert rows == 11
    got = [(e.label, e.rows.tolist()) for e in examples]
    # inside [1, 3]: clips 2 (1.28-1.88) and 3 (1.92-2.52); inside [5, 6]: clip 8 (5.12-5.72);
    # touching no segment: 0, then 5 (3.2-3.8), 6 (3.84-4.44), then 10 (6.4-7.0); 1, 4, 7, 9 straddle an edge
    assert got == [("wipe", [2, 3]), ("scan", [8]), ("idle", [0]), ("idle", [5, 6]), ("idle", [10])]
    assert read_data(tmp_path, background=None) and examples_of(truth, clips, None)[0][-1].label == "scan"


def test_the_holdout_is_a_stratified_seeded_split_of_examples():
    examples = [Example(f"{label}{n}", label, np.array([n])) for label in "abc" for n in range(10)]
    train, held = split_holdout(examples, 0.2, seed=1)
    assert sorted(e.label for e in held) == ["a", "a", "b", "b", "c", "c"]
    assert {e.key for e in train} | {e.key for e in held} == {e.key for e in examples}
    assert not {e.key for e in train} & {e.key for e in held}
    assert [e.key for e in split_holdout(examples, 0.2, seed=1)[1]] == [e.key for e in held]
    assert split_holdout(examples, 0.0)[1] == []


def test_counts_are_checked_per_class():
    examples = [Example(str(n), "a", np.array([n])) for n in range(5)]
    with pytest.raises(LearnError, match=r"fewer than 5 examples of b \(4\)"):
        check_counts([e.label for e in examples] + ["b"] * 4, ["a", "b"], "DATA")
    with pytest.raises(LearnError, match="only one class"):
        check_counts([e.label for e in examples], ["a"], "DATA")


def test_a_class_with_fewer_than_five_examples_is_one_line(tmp_path):
    data = _short_clips(tmp_path / "data", {"sweep": 5, "rise": 4})
    line = _error(edge_har("learn", data, "--output", tmp_path / "out", cwd=tmp_path))
    assert line == f"edge-har: error: {data}: fewer than 5 examples of rise (4); each class needs 5 or more " \
                   "(clips in its folder, or annotated segments)"
    assert not (tmp_path / "out").exists()


def test_a_single_class_without_background_is_one_line(tmp_path):
    data = _short_clips(tmp_path / "data", {"sweep": 5})
    line = _error(edge_har("learn", data, "--output", tmp_path / "out", cwd=tmp_path))
    assert "only one class (sweep): a head needs two" in line and "--background CLASS" in line


def test_a_missing_background_folder_is_one_line(tmp_path):
    data = _short_clips(tmp_path / "data", {"sweep": 5, "rise": 5})
    line = _error(edge_har("learn", data, "--output", tmp_path / "out", "--background", "idle", cwd=tmp_path))
    assert line == f"edge-har: error: {data}: no folder 'idle' of background clips (classes: rise, sweep)"


def test_an_existing_output_folder_is_one_line(tmp_path):
    data = _short_clips(tmp_path / "data", {"sweep": 5, "rise": 5})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    line = _error(edge_har("learn", data, "--output", tmp_path / "out", cwd=tmp_path))
    assert line == f"edge-har: error: {tmp_path / 'out'} already exists; pass --force to replace it"
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_a_model_without_a_pooled_feature_is_one_line_naming_the_node(tmp_path, colour_model_xml):  # noqa: F811
    data = _short_clips(tmp_path / "data", {"sweep": 5, "rise": 5})
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump({"model": {"path": str(colour_model_xml)}}))
    line = _error(edge_har("learn", data, "--output", tmp_path / "out", "-c", config, cwd=tmp_path))
    assert "has no pooled 512-d feature: looked for the fc layer's input: a MatMul with a 1×512 data input" in line


def test_a_bad_holdout_is_one_line(tmp_path):
    data = _short_clips(tmp_path / "data", {"sweep": 5, "rise": 5})
    line = _error(edge_har("learn", data, "--output", tmp_path / "out", "--holdout", "1.5", cwd=tmp_path))
    assert line == "edge-har: error: --holdout must be a share in [0, 1) or a folder, got 1.5"
