"""The configuration: pydantic v2 models filled from YAML, one camera or many.

Layers, later wins: built-in defaults ← ``base`` mapping ← the YAML file ←
``--set dotted.key=value`` overrides. Top-level sections are the defaults of
every camera; ``cameras: {NAME: {source: ..., <section>: {...}}}`` overrides
any per-camera section (deep-merged before validation); without ``cameras:``,
``source:`` is the one camera (named after the file's stem, or ``main``).
``${VAR}`` in a YAML string comes from the environment.

Every user mistake is a ``ConfigError`` whose ``str()`` is one line naming the
file (or ``--set KEY``) and the dotted key path, e.g.::

    config.yaml: cameras.sink.sampling.stride: must be an integer ≥ 1, got 0
    config.yaml: sampling.clip_lenn: unknown key (did you mean 'clip_len'?)
    config.yaml:12:3: YAML syntax error: mapping values are not allowed here

Normalised forms: a source is a string or None (camera index 0 is ``"0"``);
``auto`` is None: ``inference.num_requests`` and ``decode.threads`` are an int
or None, ``output.progress``, ``reconnect.live`` and ``http.enabled`` a bool or
None (``config show`` writes ``auto``); ``postprocess.smoothing`` is a
``SmoothingSpec`` (``str()`` → ``none``, ``mean:N`` or ``ema:A``);
``preprocess.mean`` None means the model's own. Relative paths are relative to
the current directory. Each camera's source is resolved once:
``CameraConfig.kind`` ("file" | "device" | "stream"), ``.live`` and
``.time_base`` ("media" | "wall").
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from edge.config.dump import config_json_schema, config_to_mapping, config_to_yaml, sample_clip_path
from edge.config.loader import (OVERRIDE_ORIGIN, ConfigError, Layers, build, camera_name_for, error_at, parse_yaml,
                                read_file)
from edge.config.schema import (GLOBAL_ONLY, HWACCELS, OUTPUT_PATHS, PER_CAMERA, RULE_KINDS, SECTIONS, ActivityConfig,
                                CameraConfig, DecodeConfig, GatingConfig, HttpConfig, InferenceConfig, ModelConfig,
                                MqttConfig, OutputConfig, PostprocessConfig, PreprocessConfig, ReconnectConfig,
                                RuleConfig, SamplingConfig, ServiceConfig)
from edge.config.values import SmoothingSpec, smoothing_check, source_kind
from edge.urls import URL_SCHEMES, mask_credentials

DEFAULT_OUTPUT_DIR = "edge-har-out"
BASE_ORIGIN = "built-in defaults"   # how errors name what came from load_config(base=...)

__all__ = [
    "DEFAULT_OUTPUT_DIR", "GLOBAL_ONLY", "HWACCELS", "OUTPUT_PATHS", "OVERRIDE_ORIGIN", "PER_CAMERA", "RULE_KINDS",
    "SECTIONS", "URL_SCHEMES", "ActivityConfig", "CameraConfig", "ConfigError", "DecodeConfig", "GatingConfig",
    "HttpConfig", "InferenceConfig", "ModelConfig", "MqttConfig", "OutputConfig", "PostprocessConfig",
    "PreprocessConfig", "ReconnectConfig", "RuleConfig", "SamplingConfig", "ServiceConfig", "SmoothingSpec",
    "camera_name_for", "check_activity_labels", "config_from_mapping", "config_from_yaml", "config_json_schema",
    "config_to_mapping", "config_to_yaml", "embedded_default_mapping", "load_config", "mask_credentials",
    "parse_smoothing", "sample_clip_path", "source_kind",
]


def load_config(path: str | os.PathLike | None = None, overrides: Iterable[str] = (), *,
                base: Mapping | None = None, env: Mapping[str, str] | None = None) -> ServiceConfig:
    """Defaults ← ``base`` ← the YAML file at ``path`` ← ``overrides`` ("dotted.key=value").

    Each override value is parsed with ``yaml.safe_load`` and checked like a file value
    (``sampling.clip_len=8`` is an int, ``inference.num_requests=auto`` is auto, ``source=0``
    is camera "0", ``cameras.sink.sampling.stride=4`` reaches one camera, ``rules=[...]``
    replaces the list); a path typed there stays text. ``env`` (default ``os.environ``)
    fills ``${VAR}``. Raises ConfigError (one line) for any mistake; errors in overrides
    name ``--set KEY``.
    """
    layers = Layers(os.environ if env is None else env)
    if base is not None:
        layers.add_mapping(base, BASE_ORIGIN)
    origin = None
    if path is not None:
        text, origin = read_file(path)
        layers.add_mapping(parse_yaml(text, origin), origin, main=True)
    if isinstance(overrides, str):  # one override passed bare
        overrides = (overrides,)
    for override in overrides:
        layers.add_override(override)
    return build(layers, origin)


def config_from_mapping(mapping: Any, origin: str = "<mapping>", *,
                        env: Mapping[str, str] | None = None) -> ServiceConfig:
    """A ServiceConfig from an already-parsed mapping (defaults for missing keys); ConfigError otherwise."""
    layers = Layers(os.environ if env is None else env)
    layers.add_mapping(mapping, origin, main=True)
    return build(layers, origin)


def config_from_yaml(text: str | bytes, origin: str = "<yaml>", *,
                     env: Mapping[str, str] | None = None) -> ServiceConfig:
    """A ServiceConfig from YAML text; ConfigError (one line) for syntax or value mistakes."""
    return config_from_mapping(parse_yaml(text, origin), origin, env=env)


def embedded_default_mapping() -> dict:
    """What ``edge-har run`` uses without ``-c``: defaults plus outputs under ``edge-har-out/``.

    Read from the package file ``edge/data/default.yaml``; a fresh dict each call.
    """
    import importlib.resources

    text = importlib.resources.files("edge").joinpath("data/default.yaml").read_text(encoding="utf-8")
    return parse_yaml(text, "edge/data/default.yaml") or {}


def parse_smoothing(value: Any) -> SmoothingSpec:
    """Parse any accepted ``postprocess.smoothing`` form (or a SmoothingSpec); ConfigError if it is not one."""
    try:
        return smoothing_check(value)
    except ValueError as error:
        raise ConfigError(f"postprocess.smoothing: {error}", key="postprocess.smoothing") from None


def check_activity_labels(config: ServiceConfig, labels: Sequence[str]) -> None:
    """Every activity's labels are labels of the model; ConfigError naming the key otherwise.

    Called once the model's labels are known (the engine), and by ``config validate`` with
    the bundled Kinetics-400 labels.
    """
    import difflib

    known = set(labels)

    def check(prefix: str, activities: Mapping[str, ActivityConfig]) -> None:
        for name, activity in activities.items():
            for index, label in enumerate(activity.labels):
                if label in known:
                    continue
                close = difflib.get_close_matches(label, list(known), n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise error_at(config.origin, f"{prefix}activities.{name}.labels[{index}]",
                               f"{label!r} is not a label of the model ({len(known)} labels){hint}")

    check("", config.activities)
    for camera in config.cameras.values():
        own = {name: activity for name, activity in camera.activities.items()
               if config.activities.get(name) != activity}
        check(f"cameras.{camera.name}.", own)
