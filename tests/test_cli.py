"""The ``edge-har`` command line: config show/validate, --set typing, one-line user errors, info, model info,
and the default run in an empty directory.

In-process ``edge.cli.main`` where that is enough (an escaping exception would fail the test just as a
traceback would); a real subprocess where the process boundary itself matters (exit status, no
traceback on stderr, the console script, environment variables read at import).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

import edge
import edge.preprocess
from edge.cli import build_parser, main
import yaml

from edge.config import config_from_yaml, embedded_default_mapping, load_config
from edge.pipeline import sample_clip_path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = REPO / "edge-har.example.yaml"
ERROR_PREFIX = "edge-har: error: "


def call(capsys, *argv) -> tuple[int, str, str]:
    """``edge.cli.main(argv)`` in this process -> (exit status, stdout, stderr)."""
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_cli(*argv, cwd=None, env_extra=None, timeout=180, script=False) -> subprocess.CompletedProcess:
    """``python -m edge ARGV`` (or the ``edge-har`` console script) in a subprocess, text output."""
    env = {k: v for k, v in os.environ.items() if k not in ("EDGE_PUREPYTHON", "EDGE_HAR_HOME")}
    env.update(env_extra or {})
    if script:
        command = [shutil.which("edge-har") or pytest.skip("the edge-har console script is not on PATH")]
    else:
        command = [sys.executable, "-m", "edge"]
    return subprocess.run([*command, *map(str, argv)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def assert_one_line_error(status: int, stderr: str, *mentions: str) -> str:
    """Exit status 2 and exactly one line on stderr, ``edge-har: error: ...`` naming ``mentions``."""
    assert status == 2, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip("\n").splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(ERROR_PREFIX), stderr
    for text in mentions:
        assert text in lines[0], (text, lines[0])
    return lines[0]


def set_args(*overrides: str) -> list[str]:
    return [part for override in overrides for part in ("--set", override)]


# ---------------------------------------------------------------- config show / validate

def test_config_show_round_trips(capsys, tmp_path):
    overrides = ["sampling.mode=rolling", "sampling.clip_len=8", "sampling.stride=4", "inference.precision=f32",
                 "inference.num_requests=2", "postprocess.smoothing=ema:0.3", "output.include_scores=true",
                 "source=0", "preprocess.mean=[1, 2, 3.5]"]
    code, shown, err = call(capsys, "config", "show", *set_args(*overrides))
    assert (code, err) == (0, "")
    config = config_from_yaml(shown)
    expected = load_config(None, overrides, base=embedded_default_mapping())
    # config show resolves model.path: null to the model that will run (or leaves null, saying why)
    assert config.model.path is None or config.model.path.endswith(".xml")
    assert config.model.labels is None and config.inference == expected.inference
    assert config.cameras == expected.cameras and list(config.cameras) == ["main"]
    assert config.sampling == type(config.sampling)(mode="rolling", clip_len=8, frame_step=1, stride=4)
    assert config.inference.num_requests == 2 and config.inference.precision == "f32"
    assert config.output.include_scores is True and config.source == "0"
    assert config.preprocess.mean == (1.0, 2.0, 3.5)
    # and through the CLI again: the shown YAML, used as the config file, shows the same values
    saved = tmp_path / "shown.yaml"
    saved.write_text(shown, encoding="utf-8")
    code, again, err = call(capsys, "config", "show", "-c", saved)
    assert (code, err) == (0, "") and yaml.safe_load(again) == yaml.safe_load(shown)


def test_config_show_without_a_file_is_the_embedded_default(capsys):
    code, shown, _ = call(capsys, "config", "show")
    config = config_from_yaml(shown)
    assert code == 0 and Path(config.source) == sample_clip_path()  # null shown as the clip it means
    assert (config.output.video, config.output.events, config.output.summary) == (
        "edge-har-out/annotated.mp4", "edge-har-out/events.jsonl", "edge-har-out/summary.json")
    sampling = config.sampling
    assert (sampling.mode, sampling.clip_len, sampling.stride) == ("batch", 16, 16)  # batch strides by clip_len
    assert config.inference == load_config().inference


@pytest.mark.parametrize("override, read, expected", [
    ("sampling.clip_len=8", lambda c: c.sampling.clip_len, 8),
    ("sampling.frame_step=3", lambda c: c.sampling.frame_step, 3),
    ("postprocess.threshold=0.25", lambda c: c.postprocess.threshold, 0.25),
    ("output.include_scores=true", lambda c: c.output.include_scores, True),
    ("inference.num_requests=auto", lambda c: c.inference.num_requests, None),
    ("source=0", lambda c: c.source, "0"),              # a camera index, kept as text
    ("model.path=2024", lambda c: c.model.path, "2024"),  # a path that looks like a number is a path
])
def test_set_values_take_the_type_of_their_key(capsys, override, read, expected):
    code, shown, _ = call(capsys, "config", "show", "--set", override)
    assert code == 0
    value = read(config_from_yaml(shown))
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("override, mentions", [
    ("sampling.clip_len=eight", ["--set sampling.clip_len", "integer"]),
    ("sampling.clip_len=0", ["--set sampling.clip_len", "≥ 1", "0"]),
    ("sampling.stride=0", ["--set sampling.stride", "≥ 1"]),
    ("sampling.clip_len=1.5", ["--set sampling.clip_len", "integer"]),
    ("sampling.clip_lenn=8", ["sampling.clip_lenn", "unknown key", "clip_len"]),
    ("inference.precision=f64", ["--set inference.precision", "f32"]),
    ("sampling.clip_len", ["KEY=VALUE"]),
])
def test_bad_set_is_a_one_line_error(capsys, override, mentions):
    code, out, err = call(capsys, "config", "show", "--set", override)
    assert out == ""
    assert_one_line_error(code, err, *mentions)


def test_bad_set_in_a_real_process_has_no_traceback():
    done = run_cli("config", "show", "--set", "sampling.clip_len=eight")
    assert done.stdout == ""
    assert_one_line_error(done.returncode, done.stderr, "--set sampling.clip_len")


BAD_FILES = {
    "unknown key": ("sampling:\n  clip_lenn: 8\n", ["sampling.clip_lenn", "unknown key", "'clip_len'"]),
    "unknown section": ("samplng:\n  clip_len: 8\n", ["samplng", "unknown key"]),
    "wrong type": ("sampling:\n  clip_len: eight\n", ["sampling.clip_len", "integer"]),
    "wrong type bool": ("postprocess:\n  top_k: true\n", ["postprocess.top_k", "integer"]),
    "clip_len 0": ("sampling:\n  clip_len: 0\n", ["sampling.clip_len", "≥ 1"]),
    "stride 0": ("sampling:\n  mode: rolling\n  stride: 0\n", ["sampling.stride", "≥ 1"]),
    "bad choice": ("inference:\n  precision: f64\n", ["inference.precision"]),
    "yaml syntax": ("sampling: [\n", ["YAML syntax error"]),
}


@pytest.mark.parametrize("command", ["validate", "show", "run"])
@pytest.mark.parametrize("problem", BAD_FILES)
def test_bad_config_file_is_a_one_line_error_naming_file_and_key(capsys, tmp_path, monkeypatch, command, problem):
    text, mentions = BAD_FILES[problem]
    path = tmp_path / "edge-har.yaml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # `run` must fail on the config before any work, but stay in a scratch dir
    argv = ["config", "validate", path] if command == "validate" else (
        ["config", "show", "-c", path] if command == "show" else ["run", "-c", path])
    code, out, err = call(capsys, *argv)
    assert out == ""
    assert_one_line_error(code, err, str(path), *mentions)
    assert not (tmp_path / "edge-har-out").exists()


def test_missing_config_file_is_a_one_line_error(capsys, tmp_path):
    code, _, err = call(capsys, "config", "validate", tmp_path / "nope.yaml")
    assert_one_line_error(code, err, str(tmp_path / "nope.yaml"), "not found")


def test_example_config_is_valid_and_lists_the_defaults(capsys):
    code, out, err = call(capsys, "config", "validate", EXAMPLE_CONFIG)
    assert (code, err) == (0, "") and "valid" in out
    assert load_config(EXAMPLE_CONFIG) == load_config()  # "every key, set to its default"


# ---------------------------------------------------------------- the default run

def count_frames(path) -> tuple[int, tuple[int, ...]]:
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    count, shape = 0, ()
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        count, shape = count + 1, frame.shape
    capture.release()
    return count, shape


def test_default_run_works_in_an_empty_directory(tmp_path, demo_home, demo_xml):
    built = Path(demo_xml).stat().st_mtime_ns
    done = run_cli("run", cwd=tmp_path, env_extra={"EDGE_HAR_HOME": str(demo_home)}, script=True)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "untrained" in done.stdout + done.stderr
    out = tmp_path / "edge-har-out"
    assert sorted(p.name for p in out.iterdir()) == ["annotated.mp4", "events.jsonl", "summary.json"]
    assert Path(demo_xml).stat().st_mtime_ns == built  # the cached demo model was used, not rebuilt

    frames, shape = count_frames(sample_clip_path())
    events = [json.loads(line) for line in (out / "events.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(events) == math.ceil(frames / 16)  # batch mode, loop-padded tail
    assert all(event["untrained"] is True for event in events)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["frames"] == frames and summary["clips"] == len(events) and summary["untrained"] is True
    assert count_frames(out / "annotated.mp4") == (frames, shape)


# ---------------------------------------------------------------- info, help, model info

def test_info_json():
    done = run_cli("info", "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["version"] == edge.__version__
    assert info["native"] is edge.preprocess.NATIVE_AVAILABLE
    assert isinstance(info["openvino"], str) and info["openvino"]
    assert "CPU" in [device["name"] for device in info["devices"]]


def test_info_json_reports_the_pure_python_twin_when_forced():
    done = run_cli("info", "--json", env_extra={"EDGE_PUREPYTHON": "1"})
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["native"] is False and info["implementation"] == "numpy"


def test_python_m_edge_help():
    done = run_cli("--help")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith("usage: edge-har")
    for command in ("run", "config", "info", "model"):
        assert command in done.stdout


def test_model_info_prints_parameters_and_untrained(capsys, demo_xml):
    code, out, _ = call(capsys, "model", "info", demo_xml)
    assert code == 0
    parameters = int(re.search(r"^parameters:\s+([\d,]+)", out, re.M).group(1).replace(",", ""))
    assert 63.4e6 < parameters < 63.7e6  # the design's ~63.5 M
    assert "untrained" in out
    code, out, _ = call(capsys, "model", "info", "--json", demo_xml)
    description = json.loads(out)
    assert description["parameters"] == parameters and description["untrained"] is True


# ---------------------------------------------------------------- global options, before or after the command

@pytest.mark.parametrize("command", [["run"], ["serve", "-c", "x.yaml"], ["config", "show"], ["config", "validate", "x"],
                                     ["info", "--json"], ["model", "info", "m.xml"], ["model", "list"],
                                     ["replay", "e.jsonl", "-c", "x.yaml"], ["report", "e.jsonl", "-o", "t.png"]])
@pytest.mark.parametrize("option, key", [("-q", "quiet"), ("--quiet", "quiet"), ("-v", "verbose"),
                                         ("--verbose", "verbose")])
def test_global_options_are_taken_before_or_after_the_command(command, option, key):
    parser = build_parser()
    before, after = vars(parser.parse_args([option, *command])), vars(parser.parse_args([*command, option]))
    neither = vars(parser.parse_args(command))
    assert before == after
    assert before[key] is True and neither[key] is False
    assert {name: value for name, value in before.items() if name != key} == \
        {name: value for name, value in neither.items() if name != key}


def test_an_option_before_the_command_is_kept_when_another_follows_it():
    args = build_parser().parse_args(["-v", "run", "-q"])
    assert args.verbose is True and args.quiet is True  # as `edge-har -v -q run`: -v wins when logging is set up


def test_version_after_the_command(capsys):
    with pytest.raises(SystemExit) as done:
        main(["run", "--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"edge-har {edge.__version__}"


def test_run_q_and_v_after_the_command_act_as_before_it(tmp_path, demo_home, demo_xml, compiled_cache,
                                                       moving_shapes_video):
    video = moving_shapes_video(16, 176, 144)
    args = ["--source", video, "--model", demo_xml, *set_args(f"inference.cache_dir={compiled_cache}")]

    def log_lines(*argv) -> list[str]:
        done = run_cli(*argv, cwd=tmp_path, env_extra={"EDGE_HAR_HOME": str(demo_home)})
        assert done.returncode == 0, done.stderr
        return [line for line in done.stderr.splitlines() if line.startswith("edge-har: ")]

    quiet = log_lines("run", *args, "-q")
    assert quiet == log_lines("-q", "run", *args)
    assert any("untrained demo model" in line for line in quiet)  # the warning stays
    assert all(line.startswith(("edge-har: WARNING: ", "edge-har: ERROR: ")) for line in quiet)
    verbose = log_lines("run", *args, "-v")
    assert verbose == log_lines("-v", "run", *args)
    assert any(line.startswith("edge-har: INFO: ") for line in verbose)


# ---------------------------------------------------------------- run: bad input

def test_run_missing_source_is_a_one_line_error(tmp_path, demo_home, demo_xml):
    done = run_cli("run", "--source", "missing.mp4", "--model", demo_xml, cwd=tmp_path,
                   env_extra={"EDGE_HAR_HOME": str(demo_home)})
    assert_one_line_error(done.returncode, done.stderr, "missing.mp4")


def test_run_source_that_is_not_a_video_is_a_one_line_error(capsys, tmp_path, monkeypatch, demo_xml):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.mp4").write_text("not a video\n", encoding="utf-8")
    code, _, err = call(capsys, "run", "--source", "notes.mp4", "--model", demo_xml)
    assert_one_line_error(code, err, "notes.mp4")


@pytest.mark.parametrize("override, mentions", [
    ("sampling.clip_len=8", ["sampling.clip_len", "8", "16"]),
    ("preprocess.size=128", ["preprocess.size", "128", "112"]),
])
def test_run_with_clips_the_model_does_not_take_is_a_one_line_error(
        capsys, tmp_path, monkeypatch, demo_xml, moving_shapes_video, override, mentions):
    monkeypatch.chdir(tmp_path)
    video = moving_shapes_video(16, 176, 144)
    code, _, err = call(capsys, "run", "--source", video, "--model", demo_xml, "--set", override)
    assert_one_line_error(code, err, *mentions)
