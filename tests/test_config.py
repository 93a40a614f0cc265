"""edge.config: every error class gives one line naming file and key; --set typing;
round trips; the example and embedded default configs; YAML fuzzing.

Cameras, ${VAR}, rules and the JSON Schema: tests/test_config_cameras.py."""

from __future__ import annotations

import re
from pathlib import Path

import pydantic
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge import config as cfg
from edge.config import (
    DEFAULT_OUTPUT_DIR,
    ConfigError,
    ServiceConfig,
    SmoothingSpec,
    config_from_mapping,
    config_from_yaml,
    config_to_mapping,
    config_to_yaml,
    embedded_default_mapping,
    load_config,
)

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "edge-har.example.yaml"


# The contract (CONTRACTS.md "Config"): every key of the file and its default, written out by hand.
CONTRACT_DEFAULTS = {
    "model": {"path": None, "labels": None},
    "inference": {"device": "CPU", "precision": "auto", "performance_hint": "auto", "num_requests": "auto",
                  "cache_dir": None, "max_wait_ms": 400},
    "sampling": {"mode": "batch", "clip_len": 16, "frame_step": 1, "stride": 1},
    "preprocess": {"size": 112, "mean": None, "interpolation": "linear"},
    "postprocess": {"top_k": 5, "smoothing": "none", "threshold": 0.0},
    "gating": {"min_motion": 0.0},
    "decode": {"hwaccel": "auto", "threads": "auto"},
    "output": {"display": False, "video": None, "video_max_width": 1280, "subtitles": None, "events": None,
               "include_scores": False, "summary": None, "log_every_s": 10.0, "overwrite": False,
               "overlay_stats": True, "progress": "auto", "rotate": "auto", "retain_days": 30.0},
    "reconnect": {"attempts": 10, "delay_s": 0.5, "max_delay_s": 10.0, "live": "auto", "watchdog_s": 20.0,
                  "open_timeout_s": 10.0, "read_timeout_s": 10.0},
    "mqtt": {"host": None, "port": 1883, "topic_prefix": "edge-har", "client_id": None, "username": None,
             "password": None, "tls": False, "ca_file": None, "homeassistant": True,
             "discovery_prefix": "homeassistant", "spool_dir": None, "spool_max_mb": 50, "predictions": False,
             "keepalive_s": 30},
    "http": {"enabled": "auto", "host": "127.0.0.1", "port": 8080, "token": None},
    "record": {"source": None, "continuous": False, "segment_s": 10.0, "retain_days": 3.0, "dir": None},
    "evidence": {"clips": "failed_checks", "pre_s": 5.0, "post_s": 5.0, "snapshot": True, "dir": None,
                 "retain_days": 30.0},
    "privacy": {"pictures": True, "masks": [], "mask_inference": False, "retain_pictures_h": None},
    "storage": {"min_free_gb": 1.0},
}


def _leaf_keys() -> list[str]:
    keys = ["source", "activities", "rules"]
    for section, leaves in CONTRACT_DEFAULTS.items():
        keys += [f"{section}.{leaf}" for leaf in leaves]
    return keys


LEAF_KEYS = _leaf_keys()


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(call, *args, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message, message
    return message


# ---------------------------------------------------------------- defaults

def test_defaults_match_the_documented_contract():
    c = load_config()
    assert list(c.cameras) == ["main"] and c.single_camera and c.origin is None
    camera = c.cameras["main"]
    assert camera.name == "main" and camera.source is None and c.source is None
    assert c.model.path is None and c.model.labels is None
    assert (c.sampling.mode, c.sampling.clip_len, c.sampling.frame_step, c.sampling.stride) == ("batch", 16, 1, 1)
    assert (c.preprocess.size, c.preprocess.mean, c.preprocess.interpolation) == (112, None, "linear")
    i = c.inference
    assert (i.device, i.precision, i.performance_hint, i.num_requests, i.cache_dir) == (
        "CPU", "auto", "auto", None, None)
    p = c.postprocess
    assert (p.top_k, str(p.smoothing), p.threshold, p.smoothing) == (5, "none", 0.0, SmoothingSpec("none"))
    o = c.output
    assert (o.display, o.video, o.video_max_width, o.subtitles, o.events, o.include_scores, o.summary,
            o.log_every_s, o.overwrite, o.overlay_stats, o.progress) == (
        False, None, 1280, None, None, False, None, 10.0, False, True, None)
    r = c.reconnect
    assert (r.attempts, r.delay_s, r.max_delay_s, r.live, r.watchdog_s, r.open_timeout_s, r.read_timeout_s) == (
        10, 0.5, 10.0, None, 20.0, 10.0, 10.0)
    assert (c.gating.min_motion, c.decode.hwaccel, c.decode.threads) == (0.0, "auto", None)
    assert c.activities == {} and c.rules == ()
    assert (c.mqtt.host, c.mqtt.port, c.mqtt.topic_prefix, c.mqtt.spool_max_mb, c.mqtt.keepalive_s) == (
        None, 1883, "edge-har", 50, 30)
    assert (c.http.enabled, c.http.host, c.http.port, c.http.token) == (None, "127.0.0.1", 8080, None)
    for section in ("sampling", "preprocess", "postprocess", "gating", "decode", "output", "reconnect"):
        assert getattr(camera, section) == getattr(c, section)  # one camera, nothing overridden
    # every key and default of the contract, as config_to_mapping writes them out
    mapping = config_to_mapping(c)
    for section, leaves in CONTRACT_DEFAULTS.items():
        assert mapping[section] == leaves, section


def test_config_is_frozen():
    c = load_config()
    with pytest.raises(pydantic.ValidationError):
        c.sampling.clip_len = 8  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        c.cameras["main"].source = "x.mp4"  # type: ignore[misc]


# ---------------------------------------------------------------- error classes, one line each

@pytest.mark.parametrize("body, key, fragment", [
    ("sampling:\n  clip_len: 0\n", "sampling.clip_len", "must be an integer ≥ 1, got 0"),
    ("sampling:\n  stride: 0\n", "sampling.stride", "must be an integer ≥ 1, got 0"),
    ("sampling:\n  frame_step: -2\n", "sampling.frame_step", "≥ 1"),
    ("sampling:\n  mode: sliding\n", "sampling.mode", "'batch', 'rolling'"),
    ("preprocess:\n  size: 0\n", "preprocess.size", "≥ 1"),
    ("preprocess:\n  mean: [1, 2]\n", "preprocess.mean", "3 numbers"),
    ("preprocess:\n  interpolation: cubic\n", "preprocess.interpolation", "'linear', 'area'"),
    ("inference:\n  precision: int4\n", "inference.precision", "'f32'"),
    ("inference:\n  num_requests: 0\n", "inference.num_requests", "≥ 1 or 'auto'"),
    ("postprocess:\n  top_k: 1001\n", "postprocess.top_k", "from 1 to 1000"),
    ("postprocess:\n  threshold: 1.5\n", "postprocess.threshold", "from 0.0 to 1.0"),
    ("postprocess:\n  smoothing: ema:0\n", "postprocess.smoothing", "ema:A"),
    ("postprocess:\n  smoothing: mean:0\n", "postprocess.smoothing", "mean:N"),
    ("postprocess:\n  smoothing: median:3\n", "postprocess.smoothing", "'none'"),
    ("output:\n  log_every_s: 0\n", "output.log_every_s", "> 0"),
    ("output:\n  progress: sometimes\n", "output.progress", "'auto', true or false"),
    ("reconnect:\n  attempts: -1\n", "reconnect.attempts", "≥ 0"),
    ("reconnect:\n  delay_s: 0\n", "reconnect.delay_s", "> 0"),
    ("reconnect:\n  delay_s: 2.0\n  max_delay_s: 1.0\n", "reconnect.max_delay_s", "≥ reconnect.delay_s"),
    ("source: -1\n", "source", "camera index ≥ 0"),
    ("source: ftp://host/clip.mp4\n", "source", "unsupported URL scheme 'ftp'"),
    ("source: ''\n", "source", "must be"),
    ("inference:\n  performance_hint: fast\n", "inference.performance_hint", "'auto', 'latency', 'throughput'"),
    ("gating:\n  min_motion: -1\n", "gating.min_motion", "from 0.0 to 255.0"),
    ("decode:\n  hwaccel: cuda\n", "decode.hwaccel", "'auto', 'none', 'qsv', 'vaapi'"),
    ("decode:\n  threads: 0\n", "decode.threads", "≥ 1 or 'auto'"),
    ("output:\n  video_max_width: 8\n", "output.video_max_width", "≥ 16"),
    ("reconnect:\n  watchdog_s: 0\n", "reconnect.watchdog_s", "> 0"),
    ("reconnect:\n  open_timeout_s: -1\n", "reconnect.open_timeout_s", "> 0"),
    ("reconnect:\n  read_timeout_s: 0\n", "reconnect.read_timeout_s", "> 0"),
    ("mqtt:\n  port: 0\n", "mqtt.port", "from 1 to 65535"),
    ("mqtt:\n  port: 65536\n", "mqtt.port", "from 1 to 65535"),
    ("mqtt:\n  topic_prefix: a/+/b\n", "mqtt.topic_prefix", "without + or #"),
    ("mqtt:\n  spool_max_mb: 0\n", "mqtt.spool_max_mb", "> 0"),
    ("http:\n  port: 70000\n", "http.port", "from 1 to 65535"),
])
def test_out_of_range_values_name_file_and_key(tmp_path, body, key, fragment):
    message = error_of(load_config, write(tmp_path, body))
    assert message.startswith(f"{tmp_path / 'config.yaml'}: {key}: "), message
    assert fragment in message


@pytest.mark.parametrize("body, key, expected, got", [
    ("sampling:\n  clip_len: sixteen\n", "sampling.clip_len", "an integer", "the string 'sixteen'"),
    ("sampling:\n  clip_len: true\n", "sampling.clip_len", "an integer", "a boolean (true)"),
    ("sampling:\n  clip_len: 16.0\n", "sampling.clip_len", "an integer", "a number (16.0)"),
    ("preprocess:\n  mean: 100\n", "preprocess.mean", "a list of 3 numbers", "an integer (100)"),
    ("gating:\n  min_motion: x\n", "gating.min_motion", "a number from 0.0 to 255.0", "the string 'x'"),
    ("mqtt:\n  port: '1883'\n", "mqtt.port", "an integer from 1 to 65535", "the string '1883'"),
    ("output:\n  subtitles: 1\n", "output.subtitles", "a path", "an integer (1)"),
    ("activities: [a]\n", "activities", "a mapping", "a list of 1 items"),
    ("rules: {a: 1}\n", "rules", "a list", "a mapping"),
    ("preprocess:\n  mean: [1, x, 3]\n", "preprocess.mean", "3 numbers", "item 2 is the string 'x'"),
    ("output:\n  display: 'yes'\n", "output.display", "true or false", "the string 'yes'"),
    ("output:\n  video: 3\n", "output.video", "a path", "an integer (3)"),
    ("output:\n  log_every_s: [1]\n", "output.log_every_s", "a number", "a list of 1 items"),
    ("inference:\n  device: null\n", "inference.device", "a string", "null"),
    ("postprocess:\n  threshold: true\n", "postprocess.threshold", "a number", "a boolean (true)"),
    ("postprocess:\n  smoothing: 3\n", "postprocess.smoothing", "'none'", "an integer (3)"),
    ("reconnect:\n  delay_s: 1e-3\n", "reconnect.delay_s", "a number", "1.0e-3"),
    ("source: [1, 2]\n", "source", "a file path", "a list of 2 items"),
    ("sampling: 5\n", "sampling", "a mapping", "an integer (5)"),
])
def test_wrong_types_name_expected_and_got(tmp_path, body, key, expected, got):
    message = error_of(load_config, write(tmp_path, body))
    assert message.startswith(f"{tmp_path / 'config.yaml'}: {key}: expected "), message
    assert expected in message and got in message


def test_unknown_key_suggests_the_close_one(tmp_path):
    path = write(tmp_path, "sampling:\n  clip_lenn: 8\n")
    assert error_of(load_config, path) == f"{path}: sampling.clip_lenn: unknown key (did you mean 'clip_len'?)"


def test_unknown_top_level_key_and_misplaced_key(tmp_path):
    assert "samplng: unknown key (did you mean 'sampling'?)" in error_of(
        load_config, write(tmp_path, "samplng:\n  mode: batch\n"))
    assert "clip_len: unknown key (did you mean 'sampling.clip_len'?)" in error_of(
        load_config, write(tmp_path, "clip_len: 8\n"))
    message = error_of(load_config, write(tmp_path, "output:\n  zzzz: 1\n"))
    assert message.endswith("output.zzzz: unknown key")


def test_yaml_syntax_error_gives_line_and_column(tmp_path):
    path = write(tmp_path, "sampling:\n  mode: batch\n  clip_len: [16\n")
    message = error_of(load_config, path)
    assert re.match(rf"{re.escape(str(path))}:\d+:\d+: YAML syntax error: \S", message), message
    path = write(tmp_path, "sampling:\n  mode: batch\n   clip_len: 16\n")  # bad indentation on line 3
    message = error_of(load_config, path)
    assert message.startswith(f"{path}:3:"), message
    assert "YAML syntax error" in message


def test_invalid_scalars_and_unsafe_tags_are_config_errors(tmp_path):
    for body in ("source: 2001-02-30\n", "source: !!bool maybe\n",
                 "source: !!python/object/apply:os.system ['true']\n", "a: &a [*a]\nb: *a\n"):
        message = error_of(load_config, write(tmp_path, body))
        assert message.startswith(str(tmp_path / "config.yaml")), message


def test_top_level_must_be_a_mapping(tmp_path):
    message = error_of(load_config, write(tmp_path, "- source: a.mp4\n"))
    assert message.startswith(f"{tmp_path / 'config.yaml'}: the top level must be a mapping")
    assert "got a list of 1 items" in message
    assert "the top level must be a mapping" in error_of(load_config, write(tmp_path, "just text\n"))


def test_empty_file_and_null_sections_mean_defaults(tmp_path):
    assert load_config(write(tmp_path, "# only a comment\n")) == load_config()
    assert load_config(write(tmp_path, "model:\nsampling:\nmqtt:\nrules:\ncameras:\n")) == load_config()


def test_missing_unreadable_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    assert error_of(load_config, missing) == f"config file not found: {missing}"
    assert "is a directory" in error_of(load_config, tmp_path)
    not_utf8 = tmp_path / "latin.yaml"
    not_utf8.write_bytes(b"source: caf\xe9.mp4\n")
    assert error_of(load_config, not_utf8).startswith(f"{not_utf8}: YAML")


def test_credentials_never_echoed(tmp_path):
    message = error_of(load_config, write(tmp_path, "source: ftp://user:secret@cam/x\n"))
    assert "secret" not in message and "user:***@cam" in message
    assert cfg.mask_credentials("rtsp://admin:pw@10.0.0.2:554/s1") == "rtsp://admin:***@10.0.0.2:554/s1"
    assert cfg.mask_credentials("rtsp://10.0.0.2/s1") == "rtsp://10.0.0.2/s1"


# ---------------------------------------------------------------- --set

def test_set_types_values_by_key():
    c = load_config(overrides=[
        "sampling.clip_len=8", "sampling.mode=rolling", "inference.num_requests=auto",
        "preprocess.mean=[1,2,3]", "postprocess.threshold=1", "output.display=true",
        "output.video=out/annotated.mp4", "postprocess.smoothing={mean: 5}", "reconnect.live=false",
    ])
    assert c.sampling.clip_len == 8 and isinstance(c.sampling.clip_len, int)
    assert c.sampling.mode == "rolling"
    assert c.inference.num_requests is None
    assert c.preprocess.mean == (1.0, 2.0, 3.0)
    assert c.postprocess.threshold == 1.0 and isinstance(c.postprocess.threshold, float)
    assert c.output.display is True and c.output.video == "out/annotated.mp4"
    assert str(c.postprocess.smoothing) == "mean:5"
    assert c.reconnect.live is False and c.cameras["main"].live is False
    assert load_config(overrides=["inference.num_requests=4"]).inference.num_requests == 4


def test_set_source_zero_is_camera_string_zero():
    for text in ("source=0", 'source="0"'):
        c = load_config(overrides=[text])
        camera = c.cameras["main"]
        assert camera.source == "0" and camera.kind == "device" and camera.live


def test_set_text_keys_keep_number_like_values_as_text():
    c = load_config(overrides=["model.path=2024", "output.events=2024-01-01", "inference.device=GPU.1",
                               "mqtt.password=1234", "http.token=2024-01-01", "mqtt.host=10"])
    assert (c.model.path, c.output.events, c.inference.device) == ("2024", "2024-01-01", "GPU.1")
    assert (c.mqtt.password, c.http.token, c.mqtt.host) == ("1234", "2024-01-01", "10")
    assert load_config(overrides=["output.video="]).output.video is None  # empty value is null


def test_set_errors_name_the_key():
    assert error_of(load_config, overrides=["sampling.clip_len=0"]) == \
        "--set sampling.clip_len: must be an integer ≥ 1, got 0"
    assert error_of(load_config, overrides=["sampling.clip_lenn=8"]) == \
        "--set sampling.clip_lenn: unknown key (did you mean 'clip_len'?)"
    assert error_of(load_config, overrides=["sampling.clip_len=abc"]).startswith("--set sampling.clip_len: expected")
    assert error_of(load_config, overrides=["preprocess.mean=[1,2"]).startswith(
        "--set preprocess.mean: YAML syntax error")
    assert "KEY=VALUE" in error_of(load_config, overrides=["sampling.clip_len"])
    assert error_of(load_config, overrides=["sampling.clip_len.x=1"]).startswith("--set sampling.clip_len.x: unknown key")
    assert error_of(load_config, overrides=["sampling.stride=true"]).startswith("--set sampling.stride: expected")


def test_layers_apply_in_order(tmp_path):
    path = write(tmp_path, "sampling:\n  clip_len: 8\noutput:\n  events: mine.jsonl\n")
    c = load_config(path, ["sampling.clip_len=4"], base=embedded_default_mapping())
    assert c.sampling.clip_len == 4                                     # --set beats the file
    assert c.output.events == "mine.jsonl"                              # the file beats base
    assert c.output.video == f"{DEFAULT_OUTPUT_DIR}/annotated.mp4"      # base beats defaults
    assert c.sampling.mode == "batch"


def test_cross_field_error_blames_the_last_layer(tmp_path):
    path = write(tmp_path, "reconnect:\n  max_delay_s: 1.0\n")
    message = error_of(load_config, path, ["reconnect.delay_s=5"])
    assert message.startswith("--set reconnect.delay_s: must be ≤ reconnect.max_delay_s")


# ---------------------------------------------------------------- smoothing

@pytest.mark.parametrize("value, normal, spec", [
    ("none", "none", SmoothingSpec("none")),
    ("mean:5", "mean:5", SmoothingSpec("mean", window=5)),
    ("MEAN: 3", "mean:3", SmoothingSpec("mean", window=3)),
    ("ema:0.3", "ema:0.3", SmoothingSpec("ema", alpha=0.3)),
    ("ema:1", "ema:1.0", SmoothingSpec("ema", alpha=1.0)),
    ({"mean": 5}, "mean:5", SmoothingSpec("mean", window=5)),
    ({"ema": 0.3}, "ema:0.3", SmoothingSpec("ema", alpha=0.3)),
])
def test_smoothing_forms_normalise(value, normal, spec):
    c = config_from_mapping({"postprocess": {"smoothing": value}})
    assert str(c.postprocess.smoothing) == normal
    assert c.postprocess.smoothing == spec == cfg.parse_smoothing(value) == cfg.parse_smoothing(spec)


@pytest.mark.parametrize("value", ["ema:0", "ema:1.5", "ema:nan", "mean:0", "mean:2.5", "mean",
                                   {"mean": 0}, {"ema": 2}, {"mean": 5, "ema": 0.1}, {"median": 3},
                                   {"mean": True}, {"mean": "5"}])
def test_smoothing_bad_forms(value):
    message = error_of(config_from_mapping, {"postprocess": {"smoothing": value}}, "c.yaml")
    assert message.startswith("c.yaml: postprocess.smoothing: ")


# ---------------------------------------------------------------- round trips, example, embedded default

def test_config_to_yaml_round_trips(tmp_path):
    c = load_config(overrides=[
        "source=rtsp://cam/stream", "sampling.mode=rolling", "sampling.stride=4", "preprocess.mean=[1.5,2,3]",
        "inference.num_requests=3", "postprocess.smoothing=ema:0.25", "output.progress=true",
        "reconnect.live=auto", "output.video=yes", "source=0",
    ])
    text = config_to_yaml(c)
    assert config_from_yaml(text) == c
    assert load_config(write(tmp_path, text)) == c
    assert config_from_mapping(config_to_mapping(c)) == c
    assert config_to_mapping(c)["inference"]["num_requests"] == 3
    assert config_to_mapping(load_config())["output"]["progress"] == "auto"
    odd = config_from_mapping({"source": "vidéo\x85 1.mp4", "output": {"video": "0\u2028"}})
    assert config_from_yaml(config_to_yaml(odd)) == odd  # line-break characters PyYAML mishandles raw


def test_example_config_validates_and_is_the_defaults():
    assert load_config(EXAMPLE) == load_config()


def test_example_config_comments_every_key_with_its_default():
    text = EXAMPLE.read_text(encoding="utf-8")
    section = None
    documented = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = re.match(r"^(\s*)([a-z_]+):(.*)$", line)
        if not match:
            continue
        indent, key, rest = match.groups()
        if not indent and not rest.split("#")[0].strip() and key != "source":
            section = key
            continue
        dotted = key if not indent else f"{section}.{key}"
        documented[dotted] = (rest, number)
    assert sorted(documented) == sorted(LEAF_KEYS)
    defaults = config_to_mapping(load_config())
    for dotted, (rest, number) in documented.items():
        if dotted == "source":
            continue  # documented by the comment block above it
        assert "#" in rest and "default" in rest.split("#", 1)[1], f"line {number}: {dotted} has no comment"
    # A few claims, read from the comments and checked against the loaded defaults.
    claims = {"sampling.clip_len": 16, "sampling.mode": "batch", "postprocess.top_k": 5,
              "reconnect.max_delay_s": 10.0, "output.log_every_s": 10.0, "inference.device": "CPU"}
    for dotted, value in claims.items():
        comment = documented[dotted][0].split("#", 1)[1]
        claimed = re.search(r"default ([^;]+);", comment).group(1).strip()
        assert yaml.safe_load(claimed) == value
        section, key = dotted.split(".")
        assert defaults[section][key] == value


def test_embedded_default():
    mapping = embedded_default_mapping()
    c = config_from_mapping(mapping, "default.yaml")
    camera = c.cameras["main"]
    assert camera.source is None and list(c.cameras) == ["main"]
    assert camera.output.video == f"{DEFAULT_OUTPUT_DIR}/annotated.mp4"      # README: `edge-har run` writes
    assert camera.output.events == f"{DEFAULT_OUTPUT_DIR}/events.jsonl"      # exactly these three files
    assert camera.output.summary == f"{DEFAULT_OUTPUT_DIR}/summary.json"
    assert camera.output.subtitles is None
    defaults = config_to_mapping(load_config())
    shown = config_to_mapping(c)
    assert {k: v for k, v in shown.items() if k != "output"} == {k: v for k, v in defaults.items() if k != "output"}
    mapping["output"]["video"] = "changed.mp4"
    assert embedded_default_mapping()["output"]["video"] == f"{DEFAULT_OUTPUT_DIR}/annotated.mp4"


@pytest.mark.parametrize("value, stored", [(True, True), (False, False), ("auto", None),
                                           ("TRUE", True), (None, None)])
def test_auto_flags_are_normalised(value, stored):
    c = config_from_mapping({"output": {"progress": value}, "reconnect": {"live": value}, "http": {"enabled": value}})
    assert c.output.progress == c.reconnect.live == c.http.enabled == stored


def test_source_kinds_and_live():
    assert [cfg.source_kind(s) for s in (None, "3", "/dev/video0", "rtsp://h/s", "clip.mp4")] == [
        "file", "device", "device", "stream", "file"]
    assert not load_config().cameras["main"].live
    assert config_from_mapping({"source": "http://h/x.ts"}).cameras["main"].live
    assert config_from_mapping({"source": "a.mp4", "reconnect": {"live": True}}).cameras["a"].live


# ---------------------------------------------------------------- properties (hypothesis)

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SECTION_NAMES = [*CONTRACT_DEFAULTS, "activities", "rules", "cameras"]
KEY_NAMES = sorted({key.rsplit(".", 1)[-1] for key in LEAF_KEYS} | set(SECTION_NAMES) | {"mean", "ema"})

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-3, max_value=20),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["auto", "batch", "rolling", "mean:3", "ema:0.5", "none", "f32", "area", "true", "0"]),
    st.integers(min_value=10**300, max_value=10**400),
)
keys = st.one_of(st.sampled_from(KEY_NAMES), st.text(max_size=10), st.integers(), st.none(), st.booleans())
documents = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)),
    max_leaves=25,
)
# Mostly the right shape, so that the value checks are reached, not just the top-level ones.
shaped = st.dictionaries(
    st.sampled_from(["source", *SECTION_NAMES]),
    st.one_of(documents, st.dictionaries(st.sampled_from(KEY_NAMES), documents, max_size=6)),
    max_size=8,
)


def _config_or_one_line_error(call, *args):
    try:
        result = call(*args)
    except ConfigError as error:
        assert "\n" not in str(error) and str(error)
        return None
    assert isinstance(result, ServiceConfig) and result.cameras
    return result


@FUZZ
@given(st.one_of(documents, shaped))
def test_any_parsed_document_gives_config_or_config_error(document):
    _config_or_one_line_error(config_from_mapping, document, "fuzz.yaml")


@FUZZ
@given(st.one_of(documents, shaped))
def test_any_dumped_document_gives_config_or_config_error(document):
    text = yaml.safe_dump(document, allow_unicode=True)
    _config_or_one_line_error(config_from_yaml, text, "fuzz.yaml")


@FUZZ
@given(st.one_of(st.text(max_size=200), st.binary(max_size=100),
                 st.text(alphabet="{}[]:,-&*!|>'\"#%@ \n\tab01.~", max_size=80)))
def test_any_text_gives_config_or_config_error(text):
    _config_or_one_line_error(config_from_yaml, text, "fuzz.yaml")


@FUZZ
@given(st.lists(st.one_of(
    st.text(max_size=40),
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(LEAF_KEYS + SECTION_NAMES), st.text(max_size=20)),
), max_size=4))
def test_any_overrides_give_config_or_config_error(overrides):
    _config_or_one_line_error(load_config, None, overrides)


valid_configs = st.builds(
    lambda source, mode, clip_len, mean, requests, smoothing, threshold, progress, video, delays: config_from_mapping({
        "source": source,
        "sampling": {"mode": mode, "clip_len": clip_len},
        "preprocess": {"mean": mean},
        "inference": {"num_requests": requests},
        "postprocess": {"smoothing": smoothing, "threshold": threshold},
        "output": {"progress": progress, "video": video},
        "reconnect": {"delay_s": delays[0], "max_delay_s": delays[0] + delays[1]},
    }),
    st.one_of(st.none(), st.integers(0, 9), st.text(min_size=1).filter(lambda s: s.strip() and "\x00" not in s
                                                                         and "://" not in s and "${" not in s)),
    st.sampled_from(["batch", "rolling"]),
    st.integers(1, 10**6),
    st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=3, max_size=3),
    st.one_of(st.none(), st.integers(1, 64)),
    st.one_of(st.just("none"), st.integers(1, 100).map(lambda n: f"mean:{n}"),
              st.floats(min_value=1e-9, max_value=1.0).map(lambda a: {"ema": a})),
    st.floats(0.0, 1.0),
    st.sampled_from(["auto", True, False]),
    st.one_of(st.none(), st.text(min_size=1).filter(lambda s: s.strip() and "\x00" not in s and "${" not in s)),
    st.tuples(st.floats(1e-6, 1e6), st.floats(0.0, 1e6)),
)


@FUZZ
@given(valid_configs)
def test_yaml_round_trip_property(config):
    assert config_from_yaml(config_to_yaml(config)) == config
