"""edge.config release 2: cameras (deep merge, {camera}, shorthand names), ${VAR} and masking,
--set on camera keys, activities and rules, http/mqtt checks, the JSON Schema, config show/validate/schema.

Expected values are written out from the issue and CONTRACTS.md, not read back from the code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support_config import error_of, write

from edge.cli import main
from edge.config import (
    ConfigError,
    ServiceConfig,
    check_activity_labels,
    config_from_mapping,
    config_from_yaml,
    config_json_schema,
    config_to_yaml,
    load_config,
)

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "edge-har.example.yaml"
NO_ENV: dict[str, str] = {}

MULTI = """\
sampling: {mode: rolling, stride: 8, clip_len: 16}
reconnect: {attempts: 3, delay_s: 1.0}
output:
  events: out/{camera}/events.jsonl
  summary: out/{camera}-summary.json
  video: null
activities:
  handwash: {labels: ["washing hands"], min_score: 0.5}
cameras:
  sink:    {source: "rtsp://cam:${SINK_PASSWORD}@cam-sink/stream2"}
  kitchen:
    source: /dev/video0
    sampling: {stride: 4}
    reconnect: {attempts: 0}
    output: {video: out/kitchen.mp4}
    activities: {handwash: {min_score: 0.8}, cooking: {labels: ["cooking egg"]}}
"""
ENV = {"SINK_PASSWORD": "s3cr3t"}


def multi(tmp_path, text=MULTI, overrides=(), env=ENV) -> ServiceConfig:
    return load_config(write(tmp_path, text), overrides, env=env)


# ---------------------------------------------------------------- cameras: deep merge, {camera}, order

def test_cameras_are_the_defaults_deep_merged_with_their_overrides(tmp_path):
    c = multi(tmp_path)
    assert list(c.cameras) == ["sink", "kitchen"] and not c.single_camera
    sink, kitchen = c.cameras["sink"], c.cameras["kitchen"]
    assert sink.name == "sink" and kitchen.name == "kitchen"
    # sink overrides nothing: every section is the top-level one (outputs expanded)
    assert (sink.sampling.mode, sink.sampling.stride, sink.sampling.clip_len) == ("rolling", 8, 16)
    assert (sink.reconnect.attempts, sink.reconnect.delay_s, sink.reconnect.max_delay_s) == (3, 1.0, 10.0)
    # kitchen overrides one key per section; its siblings still come from the top level
    assert (kitchen.sampling.mode, kitchen.sampling.stride, kitchen.sampling.clip_len) == ("rolling", 4, 16)
    assert (kitchen.reconnect.attempts, kitchen.reconnect.delay_s) == (0, 1.0)
    assert c.sampling.stride == 8 and c.reconnect.attempts == 3  # the defaults themselves are untouched
    # activities merge per activity and per key
    assert sink.activities["handwash"].labels == ("washing hands",) and sink.activities["handwash"].min_score == 0.5
    assert kitchen.activities["handwash"].labels == ("washing hands",)
    assert kitchen.activities["handwash"].min_score == 0.8
    assert kitchen.activities["cooking"].labels == ("cooking egg",) and "cooking" not in sink.activities
    assert kitchen.activities["cooking"].min_score == 0.5 and kitchen.activities["cooking"].gap_s == 2.0


def test_camera_placeholder_expands_per_camera(tmp_path):
    c = multi(tmp_path)
    sink, kitchen = c.cameras["sink"].output, c.cameras["kitchen"].output
    assert (sink.events, sink.summary, sink.video) == ("out/sink/events.jsonl", "out/sink-summary.json", None)
    assert (kitchen.events, kitchen.summary, kitchen.video) == (
        "out/kitchen/events.jsonl", "out/kitchen-summary.json", "out/kitchen.mp4")
    assert c.output.events == "out/{camera}/events.jsonl"  # the template stays on the defaults
    # a single camera expands too
    one = config_from_mapping({"source": "Front Door.mp4", "output": {"subtitles": "{camera}/{camera}.vtt"}})
    assert one.cameras["front-door"].output.subtitles == "front-door/front-door.vtt"


def test_live_follows_each_cameras_source_and_reconnect_live(tmp_path):
    text = MULTI + "  yard: {source: yard.mp4}\n  gate: {source: gate.mp4, reconnect: {live: true}}\n"
    c = multi(tmp_path, text)
    assert [c.cameras[n].live for n in ("sink", "kitchen", "yard", "gate")] == [True, True, False, True]


@pytest.mark.parametrize("source, name", [
    (None, "main"),
    ("0", "main"), (3, "main"), ("/dev/video2", "main"),
    ("rtsp://u:p@cam/stream", "main"), ("https://host/live/kitchen.m3u8", "main"),
    ("kitchen.mp4", "kitchen"),
    ("videos/Kitchen Cam.MP4", "kitchen-cam"),
    ("/data/line_2.take-3.mkv", "line_2-take-3"),
    ("été.mp4", "-t-"),
    ("A" * 40 + ".avi", "a" * 32),
    ("/", "main"),
])
def test_single_camera_shorthand_is_named_after_the_file(source, name):
    c = config_from_mapping({"source": source})
    assert list(c.cameras) == [name] and c.single_camera
    assert c.cameras[name].source == (None if source is None else str(source))


def test_a_file_without_cameras_keeps_working_as_one_camera(tmp_path):
    path = write(tmp_path, "source: clip.mp4\nsampling: {mode: rolling, stride: 4}\noutput: {events: e.jsonl}\n")
    c = load_config(path)
    camera = c.cameras["clip"]
    assert (camera.source, camera.sampling.stride, camera.output.events) == ("clip.mp4", 4, "e.jsonl")
    assert c.origin == str(path)


# ---------------------------------------------------------------- bad cameras: one line each, exact

def test_duplicate_camera_names_are_rejected_with_the_line(tmp_path):
    path = write(tmp_path, "cameras:\n  sink: {source: a.mp4}\n  yard: {source: b.mp4}\n  sink: {source: c.mp4}\n")
    assert error_of(load_config, path) == f"{path}:4:3: YAML error: duplicate key 'sink' (first on line 2)"


def test_the_strict_loader_is_a_safe_loader():
    from edge.config.loader import _StrictLoader

    assert issubclass(_StrictLoader, yaml.SafeLoader)


def test_duplicate_keys_anywhere_are_rejected(tmp_path):
    path = write(tmp_path, "sampling:\n  clip_len: 8\n  mode: batch\n  clip_len: 16\n")
    assert error_of(load_config, path) == f"{path}:4:3: YAML error: duplicate key 'clip_len' (first on line 2)"
    # a merge key (<<) is not a duplicate
    text = "base: &base {clip_len: 8}\n"
    assert "unknown key" in error_of(load_config, write(tmp_path, text))  # base: itself is unknown, no dup error
    merged = load_config(write(tmp_path, "sampling:\n  <<: {clip_len: 8, mode: rolling}\n  clip_len: 4\n"))
    assert (merged.sampling.clip_len, merged.sampling.mode) == (4, "rolling")


@pytest.mark.parametrize("name", ["Sink", "sink cam", "a" * 33, "cam.1", "ça"])
def test_invalid_camera_names(tmp_path, name):
    path = write(tmp_path, yaml.safe_dump({"cameras": {name: {"source": "a.mp4"}}}, allow_unicode=True))
    assert error_of(load_config, path) == (
        f"{path}: cameras.{name}: invalid camera name {name!r}: use 1 to 32 of a-z 0-9 _ -")


def test_camera_name_that_is_not_a_string(tmp_path):
    path = write(tmp_path, "cameras:\n  1: {source: a.mp4}\n")
    assert error_of(load_config, path) == f"{path}: cameras.1: invalid camera name an integer (1): use 1 to 32 of a-z 0-9 _ -"


def test_unknown_key_under_a_camera(tmp_path):
    path = write(tmp_path, "cameras:\n  sink:\n    source: a.mp4\n    samplng: {stride: 2}\n")
    assert error_of(load_config, path) == f"{path}: cameras.sink.samplng: unknown key (did you mean 'sampling'?)"
    path = write(tmp_path, "cameras:\n  sink:\n    source: a.mp4\n    sampling: {strid: 2}\n")
    assert error_of(load_config, path) == f"{path}: cameras.sink.sampling.strid: unknown key (did you mean 'stride'?)"
    path = write(tmp_path, "cameras:\n  sink:\n    source: a.mp4\n    name: other\n")
    assert error_of(load_config, path).startswith(f"{path}: cameras.sink.name: unknown key")


@pytest.mark.parametrize("section", ["model", "inference", "rules", "mqtt", "http"])
def test_global_only_sections_under_a_camera(tmp_path, section):
    path = write(tmp_path, f"cameras:\n  sink:\n    source: a.mp4\n    {section}: {{}}\n")
    assert error_of(load_config, path) == (
        f"{path}: cameras.sink.{section}: {section} is shared by all cameras: set it at the top level, not under a camera")


def test_a_value_error_under_a_camera_names_the_camera_key(tmp_path):
    path = write(tmp_path, "cameras:\n  sink:\n    source: a.mp4\n    sampling: {stride: 0}\n")
    assert error_of(load_config, path) == f"{path}: cameras.sink.sampling.stride: must be an integer ≥ 1, got 0"
    path = write(tmp_path, "cameras:\n  sink:\n    source: -1\n")
    assert error_of(load_config, path).startswith(f"{path}: cameras.sink.source: must be a file path")


def test_an_inherited_value_error_names_the_top_level_key(tmp_path):
    path = write(tmp_path, "sampling: {stride: 0}\ncameras:\n  sink: {source: a.mp4}\n")
    assert error_of(load_config, path) == f"{path}: sampling.stride: must be an integer ≥ 1, got 0"


def test_cross_key_error_between_the_defaults_and_a_camera_blames_the_camera(tmp_path):
    path = write(tmp_path, "reconnect: {max_delay_s: 5.0}\ncameras:\n  sink: {source: a.mp4, reconnect: {delay_s: 8.0}}\n")
    assert error_of(load_config, path) == (
        f"{path}: cameras.sink.reconnect.delay_s: must be ≤ reconnect.max_delay_s (5.0), got 8.0")


def test_camera_without_source_and_other_camera_shapes(tmp_path):
    path = write(tmp_path, "cameras:\n  sink: {sampling: {stride: 2}}\n")
    assert error_of(load_config, path).startswith(f"{path}: cameras.sink.source: missing: every camera needs a source")
    path = write(tmp_path, "cameras:\n  sink:\n")
    assert error_of(load_config, path).startswith(f"{path}: cameras.sink.source: missing")
    path = write(tmp_path, "cameras:\n  sink: a.mp4\n")
    assert error_of(load_config, path) == (
        f"{path}: cameras.sink: expected a mapping (source: and any per-camera section), got the string 'a.mp4'")
    path = write(tmp_path, "cameras: {}\n")
    assert error_of(load_config, path).startswith(f"{path}: cameras: must name at least one camera")
    path = write(tmp_path, "cameras: [a, b]\n")
    assert error_of(load_config, path) == (
        f"{path}: cameras: expected a mapping of camera name → camera, got a list of 2 items")
    path = write(tmp_path, "source: a.mp4\ncameras:\n  sink: {source: b.mp4}\n")
    assert error_of(load_config, path).startswith(f"{path}: source: a top-level source is the single-camera shorthand")
    # source: null (as in the embedded default) is no conflict
    assert list(load_config(write(tmp_path, "source: null\ncameras:\n  sink: {source: b.mp4}\n")).cameras) == ["sink"]


@pytest.mark.parametrize("key", ["events", "summary", "video", "subtitles"])
def test_two_cameras_writing_one_file(tmp_path, key):
    path = write(tmp_path, f"output: {{{key}: edge-har-out/x}}\ncameras:\n  a: {{source: a.mp4}}\n  b: {{source: b.mp4}}\n")
    assert error_of(load_config, path) == (
        f"{path}: cameras a and b would both write output.{key} edge-har-out/x; put {{camera}} in the path")


def test_the_brief_s_collision_message(tmp_path):
    path = write(tmp_path, "output: {events: edge-har-out/events.jsonl}\n"
                           "cameras:\n  a: {source: a.mp4}\n  b: {source: b.mp4}\n")
    assert error_of(load_config, path) == (f"{path}: cameras a and b would both write output.events "
                                           "edge-har-out/events.jsonl; put {camera} in the path")
    # the same file through two keys or through ./ is the same file
    path = write(tmp_path, "cameras:\n  a: {source: a.mp4, output: {events: out/x.jsonl}}\n"
                           "  b: {source: b.mp4, output: {summary: ./out/x.jsonl}}\n")
    assert "would both write" in error_of(load_config, path)
    # {camera} in the path: no collision
    ok = load_config(write(tmp_path, "output: {events: 'o/{camera}.jsonl'}\ncameras:\n  a: {source: a.mp4}\n  b: {source: b.mp4}\n"))
    assert [c.output.events for c in ok.cameras.values()] == ["o/a.jsonl", "o/b.jsonl"]


# ---------------------------------------------------------------- ${VAR}

def test_env_vars_fill_strings(tmp_path):
    c = multi(tmp_path)
    assert c.cameras["sink"].source == "rtsp://cam:s3cr3t@cam-sink/stream2"
    c = config_from_mapping({"source": "${DIR}/${NAME}.mp4", "mqtt": {"host": "${BROKER}", "port": 1883}},
                            env={"DIR": "/v", "NAME": "k", "BROKER": "10.0.0.9"})
    assert c.cameras["k"].source == "/v/k.mp4" and c.mqtt.host == "10.0.0.9"
    # $${ is a literal ${; a lone $ or a malformed ${ stays as written
    c = config_from_mapping({"mqtt": {"password": "a$${B}c$d${"}}, env=NO_ENV)
    assert c.mqtt.password == "a${B}c$d${"


def test_unset_env_var_is_a_one_line_error_naming_key_and_variable(tmp_path):
    path = write(tmp_path, MULTI)
    assert error_of(load_config, path, env=NO_ENV) == (
        f"{path}: cameras.sink.source: environment variable SINK_PASSWORD is not set (used as ${{SINK_PASSWORD}})")
    assert error_of(config_from_mapping, {"mqtt": {"password": "${PW}"}}, "c.yaml", env=NO_ENV) == (
        "c.yaml: mqtt.password: environment variable PW is not set (used as ${PW})")
    assert error_of(load_config, overrides=["http.token=${TOKEN}"], env=NO_ENV) == (
        "--set http.token: environment variable TOKEN is not set (used as ${TOKEN})")


def test_env_defaults_to_os_environ(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_TEST_CLIP", "from-env.mp4")
    assert list(config_from_mapping({"source": "${EDGE_TEST_CLIP}"}).cameras) == ["from-env"]


def test_an_env_value_is_not_echoed_in_an_error():
    message = error_of(config_from_mapping, {"mqtt": {"port": "${PORT}"}}, "c.yaml", env={"PORT": "hunter2"})
    assert message.startswith("c.yaml: mqtt.port: expected an integer") and "hunter2" not in message


def test_config_yaml_masks_credentials_and_env_values(tmp_path):
    text = MULTI + "mqtt: {host: broker, username: edge, password: '${MQTT_PASSWORD}'}\nhttp: {token: '${TOKEN}'}\n"
    c = multi(tmp_path, text, env={**ENV, "MQTT_PASSWORD": "mq-secret", "TOKEN": "tok-secret"})
    for resolved in (False, True):
        shown = config_to_yaml(c, resolved=resolved)
        assert "s3cr3t" not in shown and "mq-secret" not in shown and "tok-secret" not in shown
        assert "rtsp://cam:***@cam-sink/stream2" in shown
        again = config_from_yaml(shown, env=NO_ENV)  # loadable, with the masks as values
        assert again.mqtt.password == "***" and again.http.token == "***" and again.mqtt.username == "edge"
        assert again.cameras["sink"].source == "rtsp://cam:***@cam-sink/stream2"
    # a literal password in the file is a credential too
    c = config_from_mapping({"source": "rtsp://admin:pw@10.0.0.2/s", "mqtt": {"password": "pw"}}, env=NO_ENV)
    shown = config_to_yaml(c)
    assert "rtsp://admin:***@10.0.0.2/s" in shown and "password: '***'" in shown and ":pw@" not in shown


def test_dumped_dollar_braces_stay_literal():
    c = config_from_mapping({"source": "a$${X}.mp4"}, env=NO_ENV)
    assert c.cameras["a--x-"].source == "a${X}.mp4"
    assert config_from_yaml(config_to_yaml(c), env=NO_ENV) == c


# ---------------------------------------------------------------- --set on any key

def test_set_reaches_one_camera(tmp_path):
    c = multi(tmp_path, overrides=["cameras.sink.sampling.stride=4", "cameras.kitchen.output.events=2024"])
    assert c.cameras["sink"].sampling.stride == 4 and c.cameras["kitchen"].sampling.stride == 4
    assert c.sampling.stride == 8
    assert c.cameras["kitchen"].output.events == "2024"  # a path typed there stays text
    # a top-level --set changes the default, which a camera's own value still beats
    c = multi(tmp_path, overrides=["sampling.stride=2"])
    assert (c.cameras["sink"].sampling.stride, c.cameras["kitchen"].sampling.stride) == (2, 4)


def test_set_adds_a_camera_and_replaces_rules(tmp_path):
    c = multi(tmp_path, overrides=["cameras.yard.source=yard.mp4",
                                   "rules=[{name: w, kind: min_duration, activity: handwash, seconds: 20}]"])
    assert list(c.cameras) == ["sink", "kitchen", "yard"] and c.cameras["yard"].output.events == "out/yard/events.jsonl"
    assert [(r.name, r.kind, r.activity, r.seconds) for r in c.rules] == [("w", "min_duration", "handwash", 20.0)]


@pytest.mark.parametrize("override, message", [
    ("cameras.sink.sampling.stride=0", "--set cameras.sink.sampling.stride: must be an integer ≥ 1, got 0"),
    ("cameras.sink.sampling.strde=2", "--set cameras.sink.sampling.strde: unknown key (did you mean 'stride'?)"),
    ("cameras.sink.model.path=x.xml",
     "--set cameras.sink.model: model is shared by all cameras: set it at the top level, not under a camera"),
    ("cameras.Sink.source=a.mp4", "--set cameras.Sink: invalid camera name 'Sink': use 1 to 32 of a-z 0-9 _ -"),
    ("cameras.sink.samplng.stride=2", "--set cameras.sink.samplng: unknown key (did you mean 'sampling'?)"),
    ("rules.0.name=x", "--set rules.0.name: rules is a list: set it whole, e.g. "
                       "--set 'rules=[{name: no-smoking, kind: forbidden, activity: smoking}]'"),
    ("source=b.mp4", "--set source: a top-level source is the single-camera shorthand; with cameras:, "
                     "set each camera's source under cameras.NAME.source"),
])
def test_set_mistakes_on_camera_keys(tmp_path, override, message):
    assert error_of(multi, tmp_path, overrides=[override]) == message


def test_set_cameras_over_the_embedded_default():
    from edge.config import embedded_default_mapping

    c = load_config(None, ["cameras.a.source=a.mp4", "output.events=out/{camera}.jsonl",
                           "output.video=out/{camera}.mp4", "output.summary=out/{camera}.json"],
                    base=embedded_default_mapping())
    assert c.cameras["a"].output.video == "out/a.mp4" and not c.single_camera
    message = error_of(load_config, None, ["cameras.a.source=a.mp4", "cameras.b.source=b.mp4"],
                       base=embedded_default_mapping())
    assert message == ("built-in defaults: cameras a and b would both write output.video "
                       "edge-har-out/annotated.mp4; put {camera} in the path")


def test_set_source_is_text_like_a_path():
    assert list(load_config(overrides=["source=2024-01-01"]).cameras.values())[0].source == "2024-01-01"
    assert load_config(overrides=["cameras.a.source=0"]).cameras["a"].source == "0"


def test_set_on_activities():
    c = load_config(overrides=["activities.handwash.labels=[washing hands]", "activities.handwash.min_score=0.7"])
    assert c.activities["handwash"].labels == ("washing hands",) and c.activities["handwash"].min_score == 0.7
    assert error_of(load_config, overrides=["activities.handwash.min_scor=0.7"]) == (
        "--set activities.handwash.min_scor: unknown key (did you mean 'min_score'?)")


# ---------------------------------------------------------------- activities and rules

ACTIVITIES = {
    "handwash": {"labels": ["washing hands"]},
    "food_prep": {"labels": ["peeling potatoes", "cutting watermelon"]},
    "smoking": {"labels": ["smoking"]},
}
CAMERAS = {"sink": {"source": "a.mp4", "output": {}}, "yard": {"source": "b.mp4"}}


def with_rules(*rules, activities=ACTIVITIES, cameras=CAMERAS) -> ServiceConfig:
    return config_from_mapping({"activities": activities, "rules": list(rules), "cameras": cameras},
                               "c.yaml", env=NO_ENV)


def test_design_rules_load():
    c = with_rules(
        {"name": "wash-20s", "kind": "min_duration", "activity": "handwash", "seconds": 20},
        {"name": "wash-before-prep", "kind": "sequence", "steps": ["handwash", "food_prep"], "within_s": 600},
        {"name": "no-smoking", "kind": "forbidden", "activity": "smoking", "cameras": ["yard"]},
        {"name": "wash-after-smoking", "kind": "followed_by", "first": "smoking@yard", "then": "handwash@sink",
         "within_s": 300},
    )
    assert [r.kind for r in c.rules] == ["min_duration", "sequence", "forbidden", "followed_by"]
    assert c.rules[1].steps == ("handwash", "food_prep") and c.rules[1].within_s == 600.0
    assert c.rules[2].cameras == ("yard",) and c.rules[0].cameras is None
    assert (c.rules[3].first, c.rules[3].then, c.rules[3].within_s) == ("smoking@yard", "handwash@sink", 300.0)
    assert c.activities["food_prep"].labels == ("peeling potatoes", "cutting watermelon")
    assert (c.activities["smoking"].min_score, c.activities["smoking"].gap_s, c.activities["smoking"].update_s) == (
        0.5, 2.0, 5.0)


@pytest.mark.parametrize("rule, message", [
    ({"name": "r", "kind": "min_duration", "activity": "handwash"},
     "c.yaml: rules[0].seconds: missing: a min_duration rule needs activity, seconds"),
    ({"name": "r", "kind": "min_duration", "seconds": 3},
     "c.yaml: rules[0].activity: missing: a min_duration rule needs activity, seconds"),
    ({"name": "r", "kind": "min_duration", "activity": "handwash", "seconds": 0},
     "c.yaml: rules[0].seconds: must be a number > 0.0, got 0"),
    ({"name": "r", "kind": "sequence", "steps": ["handwash"]},
     "c.yaml: rules[0].steps: must be a list of at least 2 activities, got 1"),
    ({"name": "r", "kind": "sequence", "steps": ["handwash", "food_prep"], "within_s": 0},
     "c.yaml: rules[0].within_s: must be a number > 0.0, got 0"),
    ({"name": "r", "kind": "forbidden"},
     "c.yaml: rules[0].activity: missing: a forbidden rule needs activity"),
    ({"name": "r", "kind": "followed_by", "first": "smoking", "then": "handwash"},
     "c.yaml: rules[0].within_s: missing: a followed_by rule needs first, then, within_s"),
    ({"name": "r", "kind": "followed_by", "first": "smoking", "then": "handwash", "within_s": -5},
     "c.yaml: rules[0].within_s: must be a number > 0.0, got -5"),
    ({"name": "r", "kind": "forbidden", "activity": "smoking", "seconds": 3},
     "c.yaml: rules[0].seconds: not used by a forbidden rule (it takes activity)"),
    ({"name": "r", "kind": "never"},
     "c.yaml: rules[0].kind: must be one of 'min_duration', 'sequence', 'forbidden', 'followed_by', got 'never'"),
    ({"kind": "forbidden", "activity": "smoking"}, "c.yaml: rules[0].name: missing: a rule needs a name and a kind"),
    ({"name": "r", "kind": "forbidden", "activity": "smokin"},
     "c.yaml: rules[0].activity: unknown activity 'smokin' (did you mean 'smoking'?)"),
    ({"name": "r", "kind": "sequence", "steps": ["handwash", "zzz"]},
     "c.yaml: rules[0].steps[1]: unknown activity 'zzz' (activities: food_prep, handwash, smoking)"),
    ({"name": "r", "kind": "followed_by", "first": "smoking@yrd", "then": "handwash@sink", "within_s": 5},
     "c.yaml: rules[0].first: unknown camera 'yrd' in 'smoking@yrd' (did you mean 'yard'?)"),
    ({"name": "r", "kind": "forbidden", "activity": "smoking", "cameras": ["sink", "gate"]},
     "c.yaml: rules[0].cameras[1]: unknown camera 'gate' (cameras: sink, yard)"),
    ({"name": "r", "kind": "forbidden", "activity": "Smoking@"},
     "c.yaml: rules[0].activity: must be an activity name or ACTIVITY@CAMERA (names: 1 to 32 of a-z 0-9 _ -), "
     "got 'Smoking@'"),
    ({"name": "r", "kind": "forbidden", "activity": "smoking", "bogus": 1},
     "c.yaml: rules[0].bogus: unknown key"),
])
def test_rule_mistakes(rule, message):
    assert error_of(with_rules, rule) == message


def test_duplicate_rule_names():
    rule = {"name": "no-smoking", "kind": "forbidden", "activity": "smoking"}
    assert error_of(with_rules, {**rule}, {"name": "x", "kind": "forbidden", "activity": "handwash"}, {**rule}) == (
        "c.yaml: rules[2].name: duplicate rule name 'no-smoking' (also rules[0])")


def test_a_rule_may_name_an_activity_defined_under_one_camera():
    cameras = {"sink": {"source": "a.mp4", "activities": {"scrub": {"labels": ["washing hands"]}}},
               "yard": {"source": "b.mp4"}}
    c = with_rules({"name": "r", "kind": "min_duration", "activity": "scrub@sink", "seconds": 5},
                   activities={}, cameras=cameras)
    assert "scrub" in c.cameras["sink"].activities and "scrub" not in c.cameras["yard"].activities


@pytest.mark.parametrize("activity, message", [
    ({"labels": []}, "c.yaml: activities.a.labels: must be a non-empty list of model labels (strings), got an empty list"),
    ({"labels": "smoking"}, "c.yaml: activities.a.labels: expected a non-empty list of model labels (strings), "
                            "got the string 'smoking' (write ['smoking'])"),
    ({"labels": ["x", 3]}, "c.yaml: activities.a.labels: expected a non-empty list of model labels (strings), "
                           "item 2 is an integer (3)"),
    ({"labels": ["x"], "min_score": 0}, "c.yaml: activities.a.min_score: must be a number > 0.0 and ≤ 1.0, got 0"),
    ({"labels": ["x"], "min_score": 1.5}, "c.yaml: activities.a.min_score: must be a number > 0.0 and ≤ 1.0, got 1.5"),
    ({"min_score": 0.5}, "c.yaml: activities.a.labels: missing: an activity needs labels (a list of model labels)"),
])
def test_activity_mistakes(activity, message):
    assert error_of(config_from_mapping, {"activities": {"a": activity}}, "c.yaml") == message


def test_activity_names():
    assert error_of(config_from_mapping, {"activities": {"Hand Wash": {"labels": ["x"]}}}, "c.yaml") == (
        "c.yaml: activities.Hand Wash: invalid activity name 'Hand Wash': use 1 to 32 of a-z 0-9 _ -")
    assert error_of(config_from_mapping, {"activities": {"none": {"labels": ["x"]}}}, "c.yaml") == (
        "c.yaml: activities.none: activity name 'none' is reserved")


def test_an_activity_only_a_camera_defines_needs_labels():
    cameras = {"sink": {"source": "a.mp4", "activities": {"scrub": {"min_score": 0.6}}}}
    assert error_of(config_from_mapping, {"cameras": cameras}, "c.yaml") == (
        "c.yaml: cameras.sink.activities.scrub.labels: missing: an activity needs labels (a list of model labels)")


KINETICS_FEW = ("washing hands", "smoking", "peeling potatoes", "cutting watermelon", "cooking egg")


def test_check_activity_labels():
    check_activity_labels(with_rules(), KINETICS_FEW)  # all known: no error
    c = config_from_mapping({"activities": {"handwash": {"labels": ["washing hands", "washing handz"]}}}, "c.yaml")
    assert error_of(check_activity_labels, c, KINETICS_FEW) == (
        "c.yaml: activities.handwash.labels[1]: 'washing handz' is not a label of the model (5 labels) "
        "(did you mean 'washing hands'?)")
    cameras = {"k": {"source": "a.mp4", "activities": {"cook": {"labels": ["frying"]}}}}
    c = config_from_mapping({"cameras": cameras}, "c.yaml")
    assert error_of(check_activity_labels, c, KINETICS_FEW) == (
        "c.yaml: cameras.k.activities.cook.labels[0]: 'frying' is not a label of the model (5 labels)")


# ---------------------------------------------------------------- http, mqtt

@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::", "box.local"])
def test_http_on_a_network_address_needs_a_token(host):
    message = error_of(config_from_mapping, {"http": {"host": host}}, "c.yaml")
    assert message.startswith(f"c.yaml: http.host: serving on {host!r} (not a loopback address) needs http.token")
    assert config_from_mapping({"http": {"host": host, "token": "t"}}).http.token == "t"
    assert config_from_mapping({"http": {"host": host, "enabled": False}}).http.enabled is False


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_http_on_loopback_needs_no_token(host):
    assert config_from_mapping({"http": {"host": host}}).http.host == host


# ---------------------------------------------------------------- round trips

def test_multi_camera_yaml_round_trips(tmp_path):
    c = multi(tmp_path, MULTI.replace("rtsp://cam:${SINK_PASSWORD}@", "rtsp://"))
    text = config_to_yaml(c)
    again = config_from_yaml(text, env=NO_ENV)
    assert again == c and again.cameras == c.cameras and list(again.cameras) == ["sink", "kitchen"]
    # only what a camera changes is written under it
    cameras = yaml.safe_load(text)["cameras"]
    assert cameras["sink"] == {"source": "rtsp://cam-sink/stream2"}
    assert cameras["kitchen"]["sampling"] == {"stride": 4}


def test_resolved_view_shows_what_runs(tmp_path):
    c = load_config(overrides=["sampling.clip_len=8"])
    shown = config_to_yaml(c, resolved=True)
    data = yaml.safe_load(shown)
    assert data["source"].endswith("sample.mp4") and Path(data["source"]).is_file()
    assert data["sampling"]["stride"] == 8  # batch mode strides by clip_len
    assert re.search(r"^  stride: 8  # batch mode", shown, re.MULTILINE)
    again = config_from_yaml(shown, env=NO_ENV)  # loadable again
    assert again.cameras["sample"].sampling.clip_len == 8
    multi_shown = yaml.safe_load(config_to_yaml(multi(tmp_path), resolved=True))
    assert set(multi_shown["cameras"]) == {"sink", "kitchen"}
    assert multi_shown["cameras"]["kitchen"]["sampling"] == {"mode": "rolling", "clip_len": 16, "frame_step": 1,
                                                             "stride": 4}
    assert multi_shown["cameras"]["kitchen"]["output"]["events"] == "out/kitchen/events.jsonl"


# ---------------------------------------------------------------- JSON Schema

def _validator():
    schema = config_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _uncommented_examples() -> list[dict]:
    """The example file, and its commented multi-camera and activities/rules blocks uncommented."""
    text = EXAMPLE.read_text(encoding="utf-8")
    blocks = text.split("# ---- ")
    documents = [yaml.safe_load(text)]
    for block in blocks:
        if block.startswith("several cameras") or block.startswith("activities and checks"):
            body = "\n".join(line[2:] for line in block.splitlines()[1:] if line.startswith("#   ")
                             or re.match(r"^# [a-z_]+:", line))
            documents.append(yaml.safe_load(body))
    return documents


def test_json_schema_accepts_the_example_configs():
    validator = _validator()
    documents = _uncommented_examples()
    assert len(documents) == 3 and "cameras" in documents[1] and "rules" in documents[2]
    for document in documents:
        errors = [error.message for error in validator.iter_errors(document)]
        assert errors == [], errors
    # and the loader agrees
    env = {"SINK_PASSWORD": "p", "YARD_PASSWORD": "q"}
    assert list(config_from_mapping(documents[1], env=env).cameras) == ["sink", "kitchen", "yard"]
    both = {**documents[2], "cameras": documents[1]["cameras"]}
    assert len(config_from_mapping(both, env=env).rules) == 4
    assert validator.is_valid(both)


@pytest.mark.parametrize("document", [
    {"sampling": {"stride": 0}},
    {"sampling": {"clip_lenn": 8}},
    {"samplng": {}},
    {"cameras": {"Sink": {"source": "a.mp4"}}},
    {"cameras": {"sink": {"source": "a.mp4", "model": {"path": "x"}}}},
    {"cameras": {"sink": {"source": "a.mp4", "sampling": {"stride": 0}}}},
    {"cameras": {"sink": {"sampling": {"stride": 2}}}},
    {"rules": [{"name": "r", "kind": "min_duration", "activity": "a"}]},
    {"rules": [{"name": "r", "kind": "sometimes"}]},
    {"mqtt": {"port": 70000}},
    {"activities": {"a": {"labels": []}}},
    {"postprocess": {"smoothing": "median:3"}},
])
def test_json_schema_rejects_bad_configs(document):
    assert not _validator().is_valid(document)
    with pytest.raises(ConfigError):
        config_from_mapping(document, env=NO_ENV)


def test_json_schema_camera_sections_are_partial_overrides():
    validator = _validator()
    assert validator.is_valid({"cameras": {"sink": {"source": 0, "reconnect": {"attempts": 1},
                                                    "activities": {"handwash": {"min_score": 0.9}}}}})


# ---------------------------------------------------------------- the CLI: config show / validate / schema

def call(capsys, *argv):
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_config_schema(capsys):
    code, out, err = call(capsys, "config", "schema")
    assert (code, err) == (0, "")
    schema = json.loads(out)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "cameras" in schema["properties"] and "rules" in schema["properties"]


def test_cli_config_show_masks_env_credentials(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SINK_PASSWORD", "s3cr3t")
    monkeypatch.setenv("MQTT_PASSWORD", "mq-s3cr3t")
    path = write(tmp_path, MULTI + "mqtt: {host: broker, password: '${MQTT_PASSWORD}'}\n")
    code, out, err = call(capsys, "config", "show", "-c", path, "--set", "cameras.kitchen.sampling.stride=2")
    assert (code, err) == (0, "")
    assert "s3cr3t" not in out and "rtsp://cam:***@cam-sink/stream2" in out and "password: '***'" in out
    shown = yaml.safe_load(out)
    assert shown["cameras"]["kitchen"]["sampling"]["stride"] == 2


def test_cli_config_validate_checks_labels_against_kinetics(capsys, tmp_path):
    path = write(tmp_path, "activities:\n  handwash: {labels: [washing handz]}\n")
    code, out, err = call(capsys, "config", "validate", path)
    assert code == 2 and out == ""
    assert err == (f"edge-har: error: {path}: activities.handwash.labels[0]: 'washing handz' is not a label of the "
                   f"model (400 labels) (did you mean 'washing hands'?)\n")
    path = write(tmp_path, "activities:\n  handwash: {labels: [washing hands]}\n"
                           "cameras:\n  a: {source: a.mp4}\n  b: {source: b.mp4}\n")
    code, out, err = call(capsys, "config", "validate", path)
    assert (code, err) == (0, "") and out == f"{path}: valid (2 cameras: a, b)\n"


# ---------------------------------------------------------------- property: never another exception

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WORDS = ["source", "cameras", "sampling", "stride", "clip_len", "output", "events", "video", "model", "rules",
         "activities", "labels", "min_score", "name", "kind", "activity", "seconds", "steps", "within_s", "mqtt",
         "http", "host", "token", "port", "reconnect", "delay_s", "max_delay_s", "sink", "Sink", "a", "b",
         "min_duration", "sequence", "forbidden", "followed_by", "handwash", "handwash@sink", "{camera}",
         "${X}", "$${", "out/{camera}.jsonl", "0.0.0.0"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.floats(), st.text(max_size=12),
                    st.sampled_from(WORDS))
keys = st.one_of(st.sampled_from(WORDS), st.text(max_size=6), st.integers(), st.none())
documents = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)), max_leaves=30)
camera = st.dictionaries(st.sampled_from(["source", "sampling", "output", "activities", "model", "name"]),
                         documents, max_size=4)
shaped = st.fixed_dictionaries({}, optional={
    "cameras": st.dictionaries(st.sampled_from(["sink", "yard", "Bad", "a"]), camera, max_size=3),
    "output": st.dictionaries(st.sampled_from(["events", "video", "summary"]),
                              st.sampled_from(["o/{camera}.x", "o/x", None]), max_size=3),
    "activities": st.dictionaries(st.sampled_from(["handwash", "smoking"]), documents, max_size=2),
    "rules": st.lists(st.dictionaries(st.sampled_from(["name", "kind", "activity", "seconds", "steps", "first",
                                                       "then", "within_s", "cameras"]), documents, max_size=5),
                      max_size=3),
    "source": documents, "http": documents, "mqtt": documents, "sampling": documents,
})


@FUZZ
@given(st.one_of(documents, shaped), st.dictionaries(st.sampled_from(["X", "Y"]), st.text(max_size=5)))
def test_any_mapping_gives_a_service_config_or_a_one_line_config_error(document, env):
    try:
        result = config_from_mapping(document, "fuzz.yaml", env=env)
    except ConfigError as error:
        assert str(error) and "\n" not in str(error)
        return
    assert isinstance(result, ServiceConfig) and len(result.cameras) >= 1
    assert config_from_yaml(config_to_yaml(result), env=env) is not None  # what it shows loads again


@FUZZ
@given(st.lists(st.builds(lambda k, v: f"{k}={v}", st.sampled_from(
    ["cameras.sink.source", "cameras.sink.sampling.stride", "cameras.x.output.events", "rules", "rules.0",
     "activities.a.labels", "cameras", "cameras.sink", "http.host", "mqtt.port", "cameras.sink.http"]),
    st.one_of(st.text(max_size=15), st.sampled_from(["4", "[a]", "{source: a.mp4}", "0.0.0.0", "${X}"]))),
    max_size=4))
def test_any_overrides_give_a_service_config_or_a_one_line_config_error(overrides):
    try:
        load_config(None, overrides, env=NO_ENV)
    except ConfigError as error:
        assert str(error) and "\n" not in str(error)


# ---------------------------------------------------------------- the source, resolved once

@pytest.mark.parametrize("source, reconnect, kind, live, time_base", [
    ("kitchen.mp4", {}, "file", False, "media"),
    (None, {}, "file", False, "media"),                        # the bundled sample clip
    ("/dev/video0", {}, "device", True, "wall"),
    ("/dev/v4l/by-id/usb-cam-video-index0", {}, "device", True, "wall"),
    ("/dev/shm/clip.mp4", {}, "file", False, "media"),         # under /dev/ but not a camera
    ("rtsp://cam/stream2", {}, "stream", True, "wall"),
    ("http://host/live.ts", {}, "stream", True, "wall"),
    (0, {}, "device", True, "wall"),                            # a camera index
    ("/dev/video0", {"live": False}, "device", False, "media"),
    ("rtsp://cam/stream2", {"live": False}, "stream", False, "media"),
    ("kitchen.mp4", {"live": True}, "file", True, "wall"),
])
def test_each_camera_s_source_is_resolved_once(source, reconnect, kind, live, time_base):
    camera = config_from_mapping({"cameras": {"c": {"source": source, "reconnect": reconnect}}}, env=NO_ENV).cameras["c"]
    assert (camera.kind, camera.live, camera.time_base) == (kind, live, time_base)


def test_a_camera_read_as_not_live_has_one_time_base_for_source_activities_and_checks():
    """reconnect.live: false on /dev/video0: the source, the activity tracker and the check engine
    all read the camera's resolved live/time_base, so none of them keeps wall time alone (the lane
    reads camera.time_base for its tracker, as the checks do)."""
    import cv2
    import numpy as np

    from edge.activities import ActivityTracker
    from edge.checks import CheckEngine, time_bases
    from edge.sources import open_camera

    class Capture:
        def isOpened(self):
            return True

        def read(self):
            return True, np.zeros((24, 32, 3), np.uint8)

        def get(self, prop):
            return {cv2.CAP_PROP_FPS: 25.0, cv2.CAP_PROP_FRAME_WIDTH: 32, cv2.CAP_PROP_FRAME_HEIGHT: 24}.get(prop, 0.0)

        def release(self):
            pass

    c = config_from_mapping({
        "activities": {"smoking": {"labels": ["smoking"]}},
        "rules": [{"name": "no-smoking", "kind": "forbidden", "activity": "smoking"}],
        "cameras": {"usb": {"source": "/dev/video0", "reconnect": {"live": False}},
                    "cam": {"source": "/dev/video1"}}}, env=NO_ENV)
    expected = {"usb": "media", "cam": "wall"}
    assert time_bases(c) == expected
    assert CheckEngine(c.rules, time_bases(c)).cameras == expected
    for name, camera in c.cameras.items():
        tracker = ActivityTracker(name, camera.activities, ["smoking"], camera.time_base)
        assert tracker.time_base == expected[name]
        with open_camera(camera, capture_factory=lambda spec: Capture()) as source:
            assert source.is_live is camera.live
            first = next(iter(source))
            assert first.index == 0
