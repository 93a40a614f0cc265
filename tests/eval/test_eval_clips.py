"""``edge-har eval`` on labelled clips (``DATA/<class>/*.mp4``) with deliberate label errors.

Real OpenVINO on the colour test model: red → handwash, blue → food_prep, green → smoking. The folder:

    handwash/   red, red, blue      (the blue one is mislabelled)
    food_prep/  blue, green         (the green one is mislabelled)
    smoking/    green

Hand-computed: confusion handwash→{handwash 2, food_prep 1}, food_prep→{food_prep 1, smoking 1},
smoking→{smoking 1}; top-1 4/6; per class precision = right / predicted as the class, recall = right / n.
"""

from __future__ import annotations

import pytest
import yaml
from support_activities import colour_model_xml, write_script_video  # noqa: F401  (fixture)
from support_eval import edge_har, read_json, write_config

LAYOUT = {"handwash": ["red", "red", "blue"], "food_prep": ["blue", "green"], "smoking": ["green"]}


@pytest.fixture(scope="module")
def clips(colour_model_xml, compiled_cache, tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    data = folder / "data"
    for name, colours in LAYOUT.items():
        (data / name).mkdir(parents=True)
        for number, colour in enumerate(colours):
            # two clips of 16 frames in batch mode: the file's prediction is their mean
            write_script_video(data / name / f"{number}.mp4", [(colour, 1.28)])  # 0.mp4 in every folder
    config = write_config(folder / "cfg.yaml", colour_model_xml, compiled_cache,
                          extra={"sampling": {"mode": "rolling", "stride": 4}})  # eval forces batch for clips
    return folder, data, config


@pytest.fixture(scope="module")
def evaluated(clips):
    """(numbers, stdout) of eval running the model on the clips."""
    folder, data, config = clips
    result = edge_har("eval", data, "-c", config, "--json", folder / "eval.json", cwd=folder)
    assert result.returncode == 0, result.stderr
    return read_json(folder / "eval.json"), result.stdout


def test_top1_per_class_and_confusion_equal_the_hand_computed_values(evaluated):
    numbers, stdout = evaluated
    assert set(numbers) == {"clips", "model"}
    assert numbers["model"]["untrained"] is False and "untrained" not in stdout  # the colour model is not the demo
    section = numbers["clips"]
    assert section["n"] == 6
    assert section["top1"] == pytest.approx(4 / 6, abs=1e-6)
    # ties among the flat labels keep the class folders first, so every true class is in the top 5
    assert section["top5"] == 1.0
    assert section["confusion"] == {"handwash": {"handwash": 2, "food_prep": 1},
                                    "food_prep": {"food_prep": 1, "smoking": 1},
                                    "smoking": {"smoking": 1}}
    expected = {"handwash": (3, 2 / 2, 2 / 3), "food_prep": (2, 1 / 2, 1 / 2), "smoking": (1, 1 / 2, 1 / 1)}
    for name, (n, precision, recall) in expected.items():
        got = section["per_class"][name]
        assert got["n"] == n
        assert got["precision"] == pytest.approx(precision, abs=1e-6)
        assert got["recall"] == pytest.approx(recall, abs=1e-6)
    assert "top-1 66.7%" in stdout


def test_events_of_a_recorded_run_give_the_same_numbers(clips, evaluated, tmp_path):
    _, data, config = clips
    cameras = {f"{name.replace('_', '-')}-{video.stem}": {"source": str(video)}
               for name in LAYOUT for video in sorted((data / name).glob("*.mp4"))}
    run_config = tmp_path / "run.yaml"
    run_config.write_text(yaml.safe_dump({**yaml.safe_load(config.read_text()), "cameras": cameras,
                                          "sampling": {"mode": "batch"},
                                          "output": {"events": str(tmp_path / "events" / "{camera}.jsonl"),
                                                     "include_scores": True, "progress": False}}), encoding="utf-8")
    (tmp_path / "events").mkdir()
    result = edge_har("run", "-c", run_config, cwd=tmp_path)  # every clip a camera of one run
    assert result.returncode == 0, result.stderr
    result = edge_har("eval", data, "-c", config, "--events", tmp_path / "events", "--json", tmp_path / "ev.json",
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert read_json(tmp_path / "ev.json") == evaluated[0]


def test_a_class_named_by_a_model_label(clips, tmp_path):
    _, _, config = clips
    data = tmp_path / "data"
    (data / "washing hands").mkdir(parents=True)
    (data / "smoking").mkdir(parents=True)  # an activity
    write_script_video(data / "washing hands" / "red.mp4", [("red", 0.64)])
    write_script_video(data / "washing hands" / "green.mp4", [("green", 0.64)])
    write_script_video(data / "smoking" / "green.mp4", [("green", 0.64)])
    result = edge_har("eval", data, "-c", config, "--json", tmp_path / "eval.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    section = read_json(tmp_path / "eval.json")["clips"]
    assert section["confusion"] == {"smoking": {"smoking": 1}, "washing hands": {"washing hands": 1, "smoking": 1}}
    assert section["top1"] == pytest.approx(2 / 3, abs=1e-6)


def test_the_untrained_demo_model_is_named_in_the_table_and_the_json(demo_xml, compiled_cache, tmp_path):
    """Numbers from the demo model are chance: the terminal table and --json say it is the untrained demo."""
    data = tmp_path / "data"
    (data / "washing hands").mkdir(parents=True)
    write_script_video(data / "washing hands" / "0.mp4", [("red", 0.64)])
    config = write_config(tmp_path / "cfg.yaml", demo_xml, compiled_cache)
    result = edge_har("eval", data, "-c", config, "--json", tmp_path / "eval.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    numbers = read_json(tmp_path / "eval.json")
    assert numbers["model"] == {"name": "resnet34-kinetics-demo", "untrained": True}
    assert result.stdout.splitlines()[0].startswith("untrained demo model: these numbers are chance")
    assert numbers["clips"]["n"] == 1
