"""Bad input to ``edge-har eval``: one line on stderr naming the file (and the line), exit status 2."""

from __future__ import annotations

import json

import pytest
from support_activities import colour_model_xml, write_script_video  # noqa: F401  (fixture)
from support_eval import write_config

from edge import cli


@pytest.fixture(scope="module")
def setup(colour_model_xml, compiled_cache, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    video = write_script_video(folder / "v.mp4", [("red", 0.64)])
    config = write_config(folder / "cfg.yaml", colour_model_xml, compiled_cache,
                          rules=[{"name": "no-smoking", "kind": "forbidden", "activity": "smoking"}])
    return folder, video, config


def error_of(capsys, *args) -> str:
    assert cli.main(["eval", *map(str, args)]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("edge-har: error: ")
    return lines[0]


def annotated(tmp_path, rows: str, checks: str | None = None, video=None):
    data = tmp_path / "day"
    data.mkdir()
    if video is not None:
        (data / "v.mp4").write_bytes(video.read_bytes())
    (data / "annotations.csv").write_text("video,start_s,end_s,activity\n" + rows, encoding="utf-8")
    if checks is not None:
        (data / "checks.csv").write_text("video,rule,time_s,passed\n" + checks, encoding="utf-8")
    return data


def test_a_class_folder_that_is_neither_a_label_nor_an_activity(setup, tmp_path, capsys):
    _, video, config = setup
    (tmp_path / "data" / "handwashing").mkdir(parents=True)
    (tmp_path / "data" / "handwashing" / "v.mp4").write_bytes(video.read_bytes())
    line = error_of(capsys, tmp_path / "data", "-c", config)
    assert str(tmp_path / "data" / "handwashing") in line and "neither a model label nor an activity" in line


def test_an_empty_folder(setup, tmp_path, capsys):
    _, _, config = setup
    (tmp_path / "empty" / "handwash").mkdir(parents=True)  # a class folder without videos
    line = error_of(capsys, tmp_path / "empty", "-c", config)
    assert str(tmp_path / "empty") in line and "empty" in line


@pytest.mark.parametrize("rows, problem", [
    ("v.mp4,1.0,2.0,handwash\nv.mp4,3.0,3.0,handwash\n", "end_s (3.0) must be after start_s (3.0)"),
    ("v.mp4,1.0,2.0,handwash\nv.mp4,3.0,2.0,handwash\n", "end_s (2.0) must be after start_s (3.0)"),
    ("v.mp4,1.0,2.0,handwash\nv.mp4,1.0,2.0,dancing\n", "unknown activity 'dancing'"),
    ("v.mp4,1.0,2.0,handwash\nmissing.mp4,1.0,2.0,handwash\n", "video missing.mp4 not found"),
    ("v.mp4,1.0,2.0,handwash\nv.mp4,one,2.0,handwash\n", "start_s must be a number"),
])
def test_a_bad_annotation_row_names_the_file_and_line(setup, tmp_path, capsys, rows, problem):
    _, video, config = setup
    data = annotated(tmp_path, rows, video=video)
    line = error_of(capsys, data, "-c", config)
    assert f"{data / 'annotations.csv'}: line 3: " in line and problem in line


@pytest.mark.parametrize("rows, problem", [
    ("v.mp4,no-smoking,1.0,false\nv.mp4,no-dancing,1.0,false\n", "unknown rule 'no-dancing'"),
    ("v.mp4,no-smoking,1.0,false\nv.mp4,no-smoking,1.0,maybe\n", "passed must be true or false"),
    ("v.mp4,no-smoking,1.0,false\ngone.mp4,no-smoking,1.0,false\n", "video gone.mp4 not found"),
])
def test_a_bad_check_row_names_the_file_and_line(setup, tmp_path, capsys, rows, problem):
    _, video, config = setup
    data = annotated(tmp_path, "v.mp4,0.0,0.5,handwash\n", rows, video=video)
    line = error_of(capsys, data, "-c", config)
    assert f"{data / 'checks.csv'}: line 3: " in line and problem in line


def test_events_without_scores_when_they_are_needed(setup, tmp_path, capsys):
    _, video, config = setup
    data = tmp_path / "data"
    (data / "handwash").mkdir(parents=True)
    clip = data / "handwash" / "v.mp4"
    clip.write_bytes(video.read_bytes())
    events = tmp_path / "events.jsonl"
    line = {"source": str(clip), "clip_index": 0, "start_frame": 0, "end_frame": 15, "start_time_s": 0.0,
            "end_time_s": 0.6, "wall_time": "2026-01-01T00:00:00+00:00", "label": "washing hands", "score": 1.0,
            "top_k": [{"label": "washing hands", "score": 1.0}]}
    events.write_text(json.dumps({"event": "status"}) + "\n" + json.dumps(line) + "\n", encoding="utf-8")
    message = error_of(capsys, data, "-c", config, "--events", events)
    assert f"{events}: line 2: " in message and "without 'scores'" in message and "include_scores" in message


def test_events_that_name_no_video(setup, tmp_path, capsys):
    _, video, config = setup
    data = annotated(tmp_path, "v.mp4,0.0,0.5,handwash\n", video=video)
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"source": "elsewhere.mp4", "end_time_s": 0.6}) + "\n", encoding="utf-8")
    message = error_of(capsys, data, "-c", config, "--events", events)
    assert str(data / "v.mp4") in message and "no prediction line" in message


def test_report_without_matplotlib_is_one_line(setup, tmp_path, capsys, monkeypatch):
    import builtins

    _, video, config = setup
    data = annotated(tmp_path, "v.mp4,0.0,0.5,handwash\n", video=video)
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    line = error_of(capsys, data, "-c", config, "--report", tmp_path / "report")
    assert "pip install 'edge-har[report]'" in line
    assert not (tmp_path / "report").exists()


def test_the_progress_bar_counts_frames_and_shows_an_eta(setup):
    import io

    from edge.eval.predict import Progress

    _, video, _ = setup  # 16 frames
    stream = io.StringIO()
    progress = Progress([video, video], stream=stream, redraw_s=0.0)
    progress.on_prediction("v0001", 7)
    assert "[" + "#" * 7 + "." * 23 + "]  25% | 0/2 videos" in stream.getvalue() and "s left" in stream.getvalue()
    progress.video_done("v0001")
    progress.video_done("v0002")
    progress.close()
    last = stream.getvalue().rstrip("\n").split("\r")[-1]
    assert last.startswith("[" + "#" * 30 + "] 100% | 2/2 videos") and last.endswith("0 s left\x1b[K")
