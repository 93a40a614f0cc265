"""``edge-har learn`` end to end on the untrained demo model's features, then ``eval``, a check, the cache, INT8.

Four scripted motion classes (``support_learn``: a bar sweeping right, a bar rising, a blinking square,
a still texture; random backgrounds) that the demo model's pooled features tell apart: six videos each
to learn from, two each held out in their own folder. Oracles: learn's hold-out numbers against eval's
on the same files through ``edge-har run`` (same clips, same numbers); chance (25%); the check the
scripted video must fail; the files the cache must not compute again.
"""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from support_eval import edge_har, environment, read_json
from support_learn import class_frames, make_clips, write_class_video

KINDS = ("sweep", "rise", "blink", "still")


def _run(*args, cwd, home):
    import subprocess
    import sys

    env = {**environment(), "EDGE_HAR_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "edge", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900, check=False)


@pytest.fixture(scope="module")
def site(demo_xml, compiled_cache, tmp_path_factory):
    folder = tmp_path_factory.mktemp("learn")
    train = make_clips(folder / "train", {kind: 6 for kind in KINDS})
    held = make_clips(folder / "held", {kind: 2 for kind in KINDS}, first_seed=500)
    config = folder / "cfg.yaml"
    config.write_text(yaml.safe_dump({"model": {"path": str(demo_xml)},
                                      "inference": {"cache_dir": str(compiled_cache), "precision": "f32"}}))
    home = folder / "home"  # the feature cache of this module only
    result = _run("learn", train, "--output", folder / "out", "--holdout", held, "-c", config,
                  "--json", folder / "first.json", cwd=folder, home=home)
    assert result.returncode == 0, result.stderr
    return {"folder": folder, "train": train, "held": held, "config": config, "home": home,
            "out": folder / "out", "stdout": result.stdout}


def test_learn_writes_the_model_its_classes_and_numbers(site):
    out = site["out"]
    numbers = read_json(out / "learn.json")
    assert numbers["classes"] == sorted(KINDS)
    assert (out / "labels_custom.txt").read_text().split() == sorted(KINDS)
    assert numbers["holdout"]["n"] == 8 and numbers["train"]["examples"] == 24 and numbers["train"]["clips"] == 48
    assert numbers["features"] == {**numbers["features"], "videos": 32, "extracted": 32, "cached": 0,
                                   "unreadable": []}
    assert numbers["source_model"]["untrained"] is True
    assert "untrained demo model's" in site["stdout"] and "hold-out: 8 examples" in site["stdout"]
    info = edge_har("model", "info", out, cwd=site["folder"])
    assert info.returncode == 0, info.stderr
    assert "custom head: 4 classes as custom:NAME (blink, rise, still, sweep), output 1" in info.stdout


def test_the_holdout_numbers_are_what_eval_measures_through_run(site):
    learned = read_json(site["out"] / "learn.json")["holdout"]
    result = edge_har("eval", site["held"], "--model", site["out"], "-c", site["config"],
                      "--json", site["folder"] / "eval.json", cwd=site["folder"])
    assert result.returncode == 0, result.stderr
    measured = read_json(site["folder"] / "eval.json")
    assert measured["model"]["head"] == "custom"
    clips = measured["clips"]
    assert clips["n"] == learned["n"] == 8
    assert clips["top1"] == pytest.approx(learned["accuracy"], abs=1e-9)
    assert clips["confusion"] == learned["confusion"]
    assert clips["per_class"] == learned["per_class"]
    assert learned["accuracy"] >= 0.75  # chance is 25%
    assert "learned head stands on the untrained demo model's features" in result.stdout


def test_an_activity_on_a_custom_class_drives_a_check_live_and_in_replay(site):
    folder = site["folder"]
    video = folder / "still-then-sweep.mp4"
    import cv2

    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (160, 120))
    for image in class_frames("still", 900, 48) + class_frames("sweep", 901, 64):
        writer.write(image)
    writer.release()
    config = folder / "rules.yaml"
    config.write_text(yaml.safe_dump({
        "model": {"path": str(site["out"])},
        "inference": {"cache_dir": str(folder / "ov-cache"), "precision": "f32"},
        "activities": {"sweeping": {"labels": ["custom:sweep"], "min_score": 0.5, "gap_s": 1.0}},
        "rules": [{"name": "no-sweeping", "kind": "forbidden", "activity": "sweeping"}]}))
    events = folder / "events.jsonl"
    result = edge_har("run", "--source", video, "-c", config, "--events", events, cwd=folder)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    predictions = [line for line in lines if line.get("event", "prediction") == "prediction"]
    assert len(predictions) == 7  # 112 frames, batch clips of 16
    assert [p["custom_top_k"][0]["label"] for p in predictions[:3]] == ["still"] * 3
    assert [p["custom_top_k"][0]["label"] for p in predictions[3:]] == ["sweep"] * 4
    checks = [line for line in lines if line.get("event") == "check"]
    assert [(c["rule"], c["passed"]) for c in checks] == [("no-sweeping", False)]
    assert checks[0]["time_s"] == pytest.approx(predictions[3]["end_time_s"])  # the first sweep clip
    replayed = edge_har("replay", events, "-c", config, cwd=folder)
    assert replayed.returncode == 0, replayed.stderr
    again = [json.loads(line) for line in replayed.stdout.splitlines() if '"check"' in line]
    assert [(c["rule"], c["passed"], c["time_s"]) for c in again] == \
        [(c["rule"], c["passed"], c["time_s"]) for c in checks]


def test_a_second_learn_extracts_only_the_new_clip_and_lists_the_unreadable(site):
    folder, train = site["folder"], site["train"]
    more = folder / "train2"
    shutil.copytree(train, more)
    write_class_video(more / "sweep" / "new.mp4", "sweep", 777)
    (more / "rise" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    result = _run("learn", more, "--output", site["out"], "--holdout", site["held"], "-c", site["config"], "--force",
                  "--json", folder / "second.json", cwd=folder, home=site["home"])
    assert result.returncode == 0, result.stderr
    features = read_json(folder / "second.json")["features"]
    assert features["extracted"] == 1 and features["cached"] == 32  # only new.mp4 ran through the model
    assert features["unreadable"] == [str(more / "rise" / "broken.mp4")]
    assert "1 of 34 videos could not be read and are skipped:" in result.stdout
    assert read_json(folder / "second.json")["train"]["examples"] == 25


def test_an_existing_output_needs_force(site):
    result = _run("learn", site["train"], "--output", site["out"], "-c", site["config"], cwd=site["folder"],
                  home=site["home"])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [(f"edge-har: error: {site['out']} already exists; pass --force "
                                                  "to replace it")]


def test_int8_quantisation_keeps_the_head(site, tmp_path):
    pytest.importorskip("nncf")
    from edge.models.loading import load_model
    from edge.models.quantize import quantize_model

    videos = sorted(site["held"].rglob("*.mp4"))
    report = quantize_model(site["out"], videos, tmp_path)
    _, info = load_model(report.path)
    assert info.custom_labels == tuple(sorted(KINDS)) and "custom_logits" in info.outputs
    assert report.clips == 16
    assert report.custom_top1_agreement >= 0.9
