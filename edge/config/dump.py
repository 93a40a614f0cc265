"""Showing a configuration: YAML that loads again (credentials masked), the resolved view, the JSON Schema."""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from edge.config.loader import dotted
from edge.config.schema import GLOBAL_ONLY, OUTPUT_PATHS, PER_CAMERA, SECTIONS, CameraConfig, ServiceConfig, file_model
from edge.urls import mask_credentials

MASK = "***"
_SECRETS = ("mqtt.password", "http.token")


def sample_clip_path() -> Path:
    """The short clip that ships with the package, used when a camera has no source."""
    return Path(str(importlib.resources.files("edge") / "data" / "sample.mp4"))


def _sections(config: ServiceConfig | CameraConfig, names: tuple[str, ...]) -> dict:
    """The sections ``names`` as plain data (a rule without the keys its kind does not use)."""
    data = config.model_dump(include=set(names))
    if "rules" in data:
        data["rules"] = [rule.model_dump(exclude_none=True) for rule in config.rules]
    return data


def _diff(mine: Any, theirs: Any) -> Any:
    """What ``mine`` sets differently from ``theirs`` (mappings recursively); None when nothing."""
    if isinstance(mine, dict) and isinstance(theirs, dict):
        changed = {key: value if key not in theirs else _diff(value, theirs[key]) for key, value in mine.items()}
        return {key: value for key, value in changed.items() if value is not None} or None
    return None if mine == theirs else mine


def _camera_overrides(config: ServiceConfig, camera: CameraConfig) -> dict:
    inherited = _sections(config, PER_CAMERA)
    inherited["output"] = {key: value.replace("{camera}", camera.name) if key in OUTPUT_PATHS and value else value
                           for key, value in inherited["output"].items()}
    return {"source": camera.source, **(_diff(_sections(camera, PER_CAMERA), inherited) or {})}


def _resolved_camera(camera: CameraConfig, notes: dict[str, str], prefix: str) -> dict:
    entry = {"source": camera.source, **_sections(camera, PER_CAMERA)}
    if camera.source is None:
        entry["source"] = str(sample_clip_path())
        notes[f"{prefix}source"] = "null: the bundled sample clip"
    live = f"{'live' if camera.live else 'not live'} ({camera.kind}, {camera.time_base} time)"
    notes[f"{prefix}reconnect.live"] = f"auto: {live}" if camera.reconnect.live is None else live
    if camera.sampling.mode == "batch" and camera.sampling.stride != camera.sampling.clip_len:
        entry["sampling"]["stride"] = camera.sampling.clip_len
        notes[f"{prefix}sampling.stride"] = "batch mode: clips do not overlap, the stride is clip_len"
    return entry


def _resolved_model_path(notes: dict[str, str]) -> str | None:
    """The model that ``model.path: null`` means, found without building anything."""
    try:
        from edge.models.paths import demo_model_file, fetched_model_file, is_built

        real, demo = fetched_model_file(), demo_model_file()
    except Exception:  # the manifest cannot be read: say what null means, nothing more
        notes["model.path"] = "the fetched real model, else the untrained demo model"
        return None
    if real.is_file():
        notes["model.path"] = "null: the fetched real model"
        return str(real)
    if is_built(demo):
        notes["model.path"] = "null: the untrained demo model (no real model fetched)"
        return str(demo)
    notes["model.path"] = f"the untrained demo model, built on first use in {demo.parent}"
    return None


def config_to_mapping(config: ServiceConfig, *, resolved: bool = False,
                      notes: dict[str, str] | None = None) -> dict:
    """Plain dict of every key (lists, strings, numbers, "auto"), loadable again (``$`` of ``${`` doubled).

    ``resolved``: what runs — each camera in full, the sample path for a null source, the stride
    batch mode uses, the model ``model.path: null`` stands for; ``notes`` collects why, by dotted key.
    Credentials and values that came from ``${VAR}`` are masked.
    """
    notes = {} if notes is None else notes
    if not resolved:
        mapping = {"source": config.camera.source} if config.single_camera else {}
        mapping.update(_sections(config, SECTIONS))
        if not config.single_camera:
            mapping["cameras"] = {name: _camera_overrides(config, camera) for name, camera in config.cameras.items()}
    elif config.single_camera:
        mapping = {**_sections(config, GLOBAL_ONLY), **_resolved_camera(config.camera, notes, "")}
        mapping = {key: mapping[key] for key in ("source", *SECTIONS)}
    else:
        mapping = {**_sections(config, GLOBAL_ONLY),
                   "cameras": {name: _resolved_camera(camera, notes, f"cameras.{name}.")
                               for name, camera in config.cameras.items()}}
    if resolved and mapping["model"]["path"] is None:
        mapping["model"]["path"] = _resolved_model_path(notes)
    return _masked(mapping, _is_env(config))


def _is_env(config: ServiceConfig) -> Callable[[tuple], bool]:
    keys = config.env_keys

    def check(path: tuple) -> bool:
        if dotted(path) in keys:
            return True
        # a camera's value inherited from the top level came from ${VAR} if the top-level one did
        return len(path) > 2 and path[0] == "cameras" and dotted(path[2:]) in keys

    return check


def _masked(value: Any, is_env: Callable[[tuple], bool], path: tuple = ()) -> Any:
    if isinstance(value, dict):
        return {key: _masked(item, is_env, (*path, key)) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked(item, is_env, (*path, index)) for index, item in enumerate(value)]
    if not isinstance(value, str):
        return value
    key = dotted(path)
    if path and path[-1] == "source":
        value = mask_credentials(value)   # a URL's password, however it got there
        if is_env(path) and "://" not in value:
            value = MASK
    elif key in _SECRETS or is_env(path):
        value = MASK
    return value.replace("${", "$${")


def _tidy(node: Any) -> None:
    """Camera and activity maps are closed (a bad name is an error, not an unchecked extra); an
    ``auto`` key's default is written ``auto``, as in the file."""
    if isinstance(node, dict):
        if "patternProperties" in node:
            node["additionalProperties"] = False
        if node.get("default", 0) is None and any("auto" in (choice.get("enum") or [choice.get("const")])
                                                  for choice in node.get("anyOf", ())):
            node["default"] = "auto"
        for value in node.values():
            _tidy(value)
    elif isinstance(node, list):
        for value in node:
            _tidy(value)


class _Dumper(yaml.SafeDumper):
    """Block mappings, flow lists of scalars ([1.0, 2.0, 3.0]) — what a person would write."""


def _represent_list(dumper, data):
    flow = all(not isinstance(item, (dict, list, tuple)) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(tuple, _represent_list)


def _dump(mapping: dict) -> str:
    for allow_unicode in (True, False):
        text = yaml.dump(mapping, Dumper=_Dumper, sort_keys=False, allow_unicode=allow_unicode,
                         default_flow_style=False, width=10**6)
        if yaml.safe_load(text) == mapping:  # PyYAML writes some line-break characters (U+0085) raw
            return text
    return text


def _annotate(text: str, notes: dict[str, str]) -> str:
    """Append ``# note`` to the line of each dotted key in ``notes`` (block-style YAML from ``_dump``)."""
    if not notes:
        return text
    lines, stack = [], []
    for line in text.splitlines():
        match = re.match(r"^( *)([A-Za-z0-9_-]+):( |$)", line)
        if match:
            indent = len(match.group(1))
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, match.group(2)))
            note = notes.get(".".join(key for _, key in stack))
            if note and match.group(3) == " ":
                line = f"{line}  # {note}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def config_to_yaml(config: ServiceConfig, *, resolved: bool = False) -> str:
    """The configuration as YAML that loads again; ``config_from_yaml(config_to_yaml(c)) == c`` when
    nothing is masked. Credentials (URL passwords, mqtt.password, http.token) and values that came
    from ``${VAR}`` are shown as ``***``. ``resolved``: what runs, with a comment on each value
    that was resolved (see ``config_to_mapping``)."""
    notes: dict[str, str] = {}
    text = _dump(config_to_mapping(config, resolved=resolved, notes=notes))
    if not resolved:
        return text
    header = ("# edge-har: the configuration that runs, resolved; loads again with -c.\n"
              "# Credentials and values from ${VAR} are shown as ***.\n")
    if config.single_camera:
        header += f"# One camera: {config.camera.name}.\n"
    else:
        header += f"# {len(config.cameras)} cameras: {', '.join(config.cameras)}.\n"
    return header + _annotate(text, notes)


def config_json_schema() -> dict:
    """JSON Schema (2020-12) of the YAML file, for editors (yaml-language-server) and CI checks."""
    schema = file_model().model_json_schema()
    for name, definition in schema.get("$defs", {}).items():
        if name.endswith("Override") or name == "CameraFile":
            for prop in definition.get("properties", {}).values():
                prop.pop("default", None)  # an override left out inherits; it has no default of its own
    _tidy(schema)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "edge-har configuration", **{k: v for k, v in schema.items() if k != "title"}}
