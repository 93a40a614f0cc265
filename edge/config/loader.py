"""Loading: YAML (duplicate keys rejected), ``${VAR}``, layers, ``--set``, cameras, and the one-line errors.

Layers, later wins: built-in defaults ← ``base`` mapping ← the YAML file ← ``--set`` overrides.
The raw layers are deep-merged first; then the top level is validated (``GlobalSections``),
then each camera: the top-level per-camera sections deep-merged with the camera's overrides,
validated as a ``CameraConfig`` (Frigate's way). Every pydantic error is reworded here, once,
into ``FILE: dotted.key: problem`` (``--set dotted.key: problem`` when an override set it).
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from edge.config.schema import (
    AT_ERROR,
    BLAME_ERROR,
    GLOBAL_ONLY,
    OUTPUT_PATHS,
    PER_CAMERA,
    ActivityConfig,
    CameraConfig,
    GlobalSections,
    RuleConfig,
    ServiceConfig,
)
from edge.config.values import (
    NAME_PATTERN,
    TEXT,
    VALUE_ERROR,
    describe,
    key_text,
    scalar_text,
    source_kind,
)

OVERRIDE_ORIGIN = "--set"
TOP_LEVEL = (*GlobalSections.model_fields, "cameras")
SECTIONS = tuple(name for name in GlobalSections.model_fields if name not in ("source", "rules"))
CAMERA_KEYS = ("source", *PER_CAMERA)
MAX_NODES = 200_000            # a YAML alias bomb expands past this; a real config is a few hundred
_ENV = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(Exception):
    """A user mistake in the configuration; ``str(error)`` is one line.

    ``origin`` is the file name, ``"--set"`` or ``"<mapping>"``; ``key`` the
    dotted key path when one is to blame.
    """

    def __init__(self, message: str, *, origin: str | None = None, key: str | None = None):
        # One line whatever went into it: a path or a YAML problem may hold a newline.
        message = message.replace("\r", "\\r").replace("\n", "\\n")
        super().__init__(message)
        self.origin = origin
        self.key = key


def error_at(origin: str | None, key: str | None, problem: str) -> ConfigError:
    if key is None:
        where = f"{origin}: " if origin else ""
    elif origin == OVERRIDE_ORIGIN:
        where = f"{OVERRIDE_ORIGIN} {key}: "
    else:
        where = f"{origin}: {key}: " if origin else f"{key}: "
    return ConfigError(f"{where}{problem}", origin=origin, key=key)


def dotted(path: Sequence[Any]) -> str:
    """("rules", 0, "activity") → "rules[0].activity"."""
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + key_text(part)
    return text


def _exception_text(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:200] or type(error).__name__


# ---------------------------------------------------------------- YAML

class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (safe_load silently keeps the last)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:
                    continue  # an unhashable key: the base class says so
                if first is not key_node:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_text(key)!r} (first on line {first.start_mark.line + 1})",
                        key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor("tag:yaml.org,2002:map", _StrictLoader.construct_yaml_map)


def _safe_load_strict(text: str | bytes) -> Any:
    """``yaml.safe_load`` with ``_StrictLoader`` (a SafeLoader: no Python tags, no object construction)."""
    loader = _StrictLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def parse_yaml(text: str | bytes, origin: str) -> Any:
    """``yaml.safe_load`` with duplicate keys rejected; ConfigError ``FILE:LINE:COL: ...`` otherwise."""
    try:
        return _safe_load_strict(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = " ".join(str(error.problem or error.context or "invalid YAML").split())
        kind = "YAML error" if problem.startswith("duplicate key") else "YAML syntax error"
        where = f"{origin}:{mark.line + 1}:{mark.column + 1}" if mark is not None else origin
        raise ConfigError(f"{where}: {kind}: {problem}", origin=origin) from None
    except yaml.YAMLError as error:  # e.g. a ReaderError: bytes that are not UTF-8 or unprintable
        raise ConfigError(f"{origin}: YAML error: {_exception_text(error)}", origin=origin) from None
    except RecursionError:
        raise ConfigError(f"{origin}: YAML error: the document is nested too deeply", origin=origin) from None
    except Exception as error:  # PyYAML constructors raise bare ValueError/KeyError (e.g. 2001-02-30)
        raise ConfigError(f"{origin}: YAML error: invalid value ({_exception_text(error)})", origin=origin) from None


def read_file(path: str | os.PathLike) -> tuple[bytes, str]:
    origin = os.fspath(path)
    try:
        with open(origin, "rb") as handle:
            return handle.read(), origin
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {origin}", origin=origin) from None
    except IsADirectoryError:
        raise ConfigError(f"{origin}: cannot read the config file: it is a directory", origin=origin) from None
    except OSError as error:
        raise ConfigError(f"{origin}: cannot read the config file: {error.strerror or error}",
                          origin=origin) from None


# ---------------------------------------------------------------- ${VAR}

def expand_env(document: Any, origin: str, env: Mapping[str, str], prefix: tuple = (),
               env_keys: set[str] | None = None) -> Any:
    """A copy of ``document`` with ``${VAR}`` replaced in every string (``$${`` is a literal ``${``).

    Dotted keys of the strings that used a variable go into ``env_keys``. An unset variable, a
    value that contains itself (a recursive YAML alias) or an alias bomb is a ConfigError.
    Shared sub-documents are expanded once, so aliases stay cheap.
    """
    done: dict[int, Any] = {}   # containers with no ${VAR} inside, already copied
    busy: set[int] = set()
    nodes = [0]

    def walk(value, path) -> tuple[Any, bool]:
        if isinstance(value, str):
            return substitute(value, path)
        if not isinstance(value, (dict, list)):
            return value, False
        if id(value) in done:
            return done[id(value)], False
        nodes[0] += 1
        if nodes[0] > MAX_NODES:
            raise error_at(origin, None, f"YAML error: the document expands to more than {MAX_NODES} "
                                         f"mappings and lists (aliases?)")
        if id(value) in busy:
            raise error_at(origin, dotted((*prefix, *path)) or None,
                           "YAML error: a value contains itself (a recursive alias)")
        busy.add(id(value))
        used = False
        try:
            if isinstance(value, dict):
                result: Any = {}
                for key, item in value.items():
                    result[key], item_used = walk(item, (*path, key))
                    used |= item_used
            else:
                result = []
                for index, item in enumerate(value):
                    copied, item_used = walk(item, (*path, index))
                    result.append(copied)
                    used |= item_used
        finally:
            busy.discard(id(value))
        if not used:
            done[id(value)] = result
        return result, used

    def substitute(text, path) -> tuple[str, bool]:
        if "${" not in text:
            return text, False
        used = False

        def replace(match):
            nonlocal used
            if match.group(0) == "$${":
                return "${"
            name = match.group(1)
            if name not in env:
                raise error_at(origin, dotted((*prefix, *path)) or None,
                               f"environment variable {name} is not set (used as ${{{name}}})")
            used = True
            return env[name]

        result = _ENV.sub(replace, text)
        if used and env_keys is not None:
            env_keys.add(dotted((*prefix, *path)))
        return result, used

    try:
        return walk(document, ())[0]
    except RecursionError:
        raise ConfigError(f"{origin}: YAML error: the document is nested too deeply", origin=origin) from None


# ---------------------------------------------------------------- layers

class Layers:
    """The raw layers deep-merged, remembering who set each key path (origin, layer number)."""

    def __init__(self, env: Mapping[str, str]):
        self.merged: dict = {}
        self.origins: dict[tuple, tuple[str, int]] = {}
        self.env = env
        self.env_keys: set[str] = set()
        self.count = 0
        self.main_origin: str | None = None

    def add_mapping(self, mapping: Any, origin: str, *, main: bool = False) -> None:
        self.count += 1
        if main:
            self.main_origin = origin
        if mapping is None:  # an empty file or one with only comments: all defaults
            return
        if not isinstance(mapping, Mapping):
            raise ConfigError(f"{origin}: the top level must be a mapping of keys "
                              f"({', '.join(TOP_LEVEL)}), got {describe(mapping)}", origin=origin)
        mapping = expand_env(dict(mapping), origin, self.env, env_keys=self.env_keys)
        self._merge(self.merged, _drop_null_sections(mapping), (), origin)

    def add_override(self, text: Any) -> None:
        self.count += 1
        path, value = parse_override(text, self.env, self.env_keys)
        nested: Any = value
        for part in reversed(path[1:]):
            nested = {part: nested}
        self._merge(self.merged, _drop_null_sections({path[0]: nested}), (), OVERRIDE_ORIGIN)

    def _merge(self, target: dict, source: Mapping, path: tuple, origin: str) -> None:
        for key, value in source.items():
            here = (*path, key)
            self.origins[here] = (origin, self.count)
            if isinstance(value, Mapping) and isinstance(target.get(key), dict):
                self._merge(target[key], value, here, origin)
            elif isinstance(value, Mapping):
                target[key] = {}
                self._merge(target[key], value, here, origin)
            else:
                target[key] = value

    def origin_of(self, path: Sequence[Any], floor: int = 0) -> tuple[str, int] | None:
        """Who set ``path`` or the nearest enclosing key (at least ``floor`` parts long)."""
        path = tuple(path)
        for length in range(len(path), floor, -1):
            found = self.origins.get(path[:length])
            if found is not None:
                return found
        return None


def _drop_null_sections(mapping: Mapping) -> dict:
    """``sampling:`` with every key commented out is null: it means "defaults", at the top and under a camera."""
    result = {key: value for key, value in mapping.items() if not (key in SECTIONS and value is None)}
    if result.get("rules", 0) is None:
        del result["rules"]
    if "cameras" in result and result["cameras"] is None:
        del result["cameras"]
    cameras = result.get("cameras")
    if isinstance(cameras, Mapping):
        result["cameras"] = {name: ({} if camera is None else
                                    {k: v for k, v in camera.items() if not (k in PER_CAMERA and v is None)}
                                    if isinstance(camera, Mapping) else camera)
                             for name, camera in cameras.items()}
    return result


# ---------------------------------------------------------------- the schema, walked by key

def _unwrap(annotation: Any) -> Any:
    """Optional[X] → X."""
    if get_origin(annotation) is Union:
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _child(model: type[BaseModel], name: str):
    """What key ``name`` of ``model`` holds: ("model", M) | ("dict", M) | ("list", M) | ("leaf", field) | None."""
    field = model.model_fields.get(name) if isinstance(name, str) else None
    if field is None:
        return None
    annotation = _unwrap(field.annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "model", annotation
    if get_origin(annotation) is dict:
        return "dict", get_args(annotation)[1]
    if get_origin(annotation) is tuple and get_args(annotation)[:1] and isinstance(get_args(annotation)[0], type) \
            and issubclass(get_args(annotation)[0], BaseModel):
        return "list", get_args(annotation)[0]
    return "leaf", field


def _model_at(root: type[BaseModel], path: Sequence[Any]) -> type[BaseModel] | None:
    """The model that holds the keys at ``path`` (dict keys and list indices skipped)."""
    model, parts = root, list(path)
    while parts:
        node = _child(model, parts.pop(0))
        if node is None or node[0] == "leaf":
            return None
        if node[0] in ("dict", "list"):
            if not parts:
                return None
            parts.pop(0)
        model = node[1]
    return model


def _leaf_paths() -> dict[str, str]:
    """Leaf name → its first dotted path, for "did you mean 'sampling.clip_len'?" on a misplaced key."""
    found: dict[str, str] = {}
    for section in SECTIONS:
        node = _child(GlobalSections, section)
        model = node[1]
        for name in model.model_fields:
            found.setdefault(name, f"{section}.{name}" if node[0] == "model" else f"{section}.NAME.{name}")
    return found


LEAF_PATHS = _leaf_paths()


def unknown_key_problem(name: Any, allowed: Iterable[str], dotted_key: str) -> str:
    close = difflib.get_close_matches(name, list(allowed), n=1) if isinstance(name, str) else []
    if close:
        return f"unknown key (did you mean {close[0]!r}?)"
    elsewhere = LEAF_PATHS.get(name) if isinstance(name, str) else None
    if elsewhere and elsewhere != dotted_key and "NAME" not in elsewhere:
        return f"unknown key (did you mean {elsewhere!r}?)"
    return "unknown key"


def _shared_problem(section: str) -> str:
    return f"{section} is shared by all cameras: set it at the top level, not under a camera"


# ---------------------------------------------------------------- --set

def parse_override(text: Any, env: Mapping[str, str], env_keys: set[str]) -> tuple[tuple[str, ...], Any]:
    """``"dotted.key=value"`` → (key path, value parsed with yaml.safe_load); ConfigError ``--set KEY: ...``."""
    if not isinstance(text, str) or "=" not in text:
        raise ConfigError(f"{OVERRIDE_ORIGIN} {scalar_text(text)}: expected KEY=VALUE, "
                          f"e.g. sampling.clip_len=8", origin=OVERRIDE_ORIGIN)
    key, raw = (part.strip() for part in text.split("=", 1))
    path = tuple(key.split("."))
    leaf = _override_target(key, path)
    try:
        value = _safe_load_strict(raw)
    except yaml.MarkedYAMLError as error:
        raise error_at(OVERRIDE_ORIGIN, key, f"YAML syntax error in the value: "
                                             f"{' '.join(str(error.problem or error.context).split())}") from None
    except Exception as error:  # PyYAML constructors raise bare ValueError/KeyError for bad scalars
        raise error_at(OVERRIDE_ORIGIN, key, f"invalid YAML value: {_exception_text(error)}") from None
    # A path or device typed on the command line is text, even if it looks like a number or a date.
    if leaf is not None and TEXT in leaf.metadata and value is not None and not isinstance(value, (str, list, dict)):
        value = raw
    value = expand_env(value, OVERRIDE_ORIGIN, env, prefix=path, env_keys=env_keys)
    return path, value


def _override_target(key: str, path: tuple[str, ...]):
    """Check a ``--set`` key against the schema; the leaf's field (None for a whole section or camera)."""
    def unknown(at: int, allowed: Iterable[str]) -> ConfigError:
        shown = ".".join(path[:at + 1])
        problem = unknown_key_problem(path[at], allowed, shown)
        return error_at(OVERRIDE_ORIGIN, key if at == len(path) - 1 else shown, problem)

    if not all(path):
        raise error_at(OVERRIDE_ORIGIN, key, "expected a dotted key such as sampling.clip_len")
    head = path[0]
    if head not in TOP_LEVEL:
        raise unknown(0, TOP_LEVEL)
    if head == "rules" and len(path) > 1:
        raise error_at(OVERRIDE_ORIGIN, key, "rules is a list: set it whole, e.g. "
                                             "--set 'rules=[{name: no-smoking, kind: forbidden, activity: smoking}]'")
    model: type[BaseModel] = GlobalSections
    at = 0
    if head == "cameras":
        if len(path) == 1:
            return None
        if not re.fullmatch(NAME_PATTERN, path[1]):
            raise error_at(OVERRIDE_ORIGIN, ".".join(path[:2]),
                           f"invalid camera name {path[1]!r}: use 1 to 32 of a-z 0-9 _ -")
        if len(path) == 2:
            return None
        if path[2] in GLOBAL_ONLY:
            raise error_at(OVERRIDE_ORIGIN, ".".join(path[:3]), _shared_problem(path[2]))
        if path[2] not in CAMERA_KEYS:
            raise unknown(2, CAMERA_KEYS)
        model, at = CameraConfig, 2
    while True:
        node = _child(model, path[at])
        if node is None:
            raise unknown(at, model.model_fields)
        kind, target = node
        if at == len(path) - 1:
            return target if kind == "leaf" else None
        if kind == "leaf":
            raise error_at(OVERRIDE_ORIGIN, key, "unknown key" + (
                f" ({'.'.join(path[:at + 1])} is a value, not a section)"))
        if kind == "dict":  # activities.NAME.key
            at += 1
            if at == len(path) - 1:
                return None
        model, at = target, at + 1


# ---------------------------------------------------------------- pydantic errors, reworded once

def reword(error: ValidationError, layers: Layers, camera: str | None = None,
           camera_raw: Mapping | None = None) -> ConfigError:
    """The first pydantic error as ``ORIGIN: dotted.key: problem``.

    ``camera``: the error is inside that camera's merged config; the key shown is
    ``cameras.NAME.…`` when the camera set it, else the top-level key it inherited.
    """
    detail = error.errors(include_url=False)[0]
    loc = tuple(part for part in detail["loc"] if part != "[key]")  # a bad dict key: name the key itself
    kind, context, value = detail["type"], detail.get("ctx") or {}, detail.get("input")
    problem = None
    if kind == AT_ERROR:
        loc, problem = (*loc, context["at"]), context["problem"]
    elif kind == BLAME_ERROR:
        blame = context["blame"]
        ranked = sorted(blame, key=lambda name: _rank(layers, camera, (*loc, name)), reverse=True)
        loc, problem = (*loc, ranked[0]), blame[ranked[0]]
    elif kind == VALUE_ERROR:
        problem = context["problem"]
    elif kind == "extra_forbidden":
        parent, name = loc[:-1], loc[-1]
        if camera is not None and not parent and name in GLOBAL_ONLY:
            problem = _shared_problem(name)
        elif camera is not None and not parent and name == "name":
            problem = "unknown key (a camera's name is its key under cameras:)"
        else:
            model = _model_at(CameraConfig if camera is not None else GlobalSections, parent)
            allowed = [k for k in (model.model_fields if model else ()) if k != "name" or model is not CameraConfig]
            if model is GlobalSections:
                allowed = list(TOP_LEVEL)
            problem = unknown_key_problem(name, allowed, dotted(loc))
    elif kind == "missing":
        model = _model_at(CameraConfig if camera is not None else GlobalSections, loc[:-1])
        problem = "missing" + (": an activity needs labels (a list of model labels)" if model is ActivityConfig
                               else ": a rule needs a name and a kind" if model is RuleConfig else " (required)")
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        problem = f"expected a mapping of keys, got {describe(value)}"
    elif kind in ("tuple_type", "list_type"):
        problem = f"expected a list, got {describe(value)}"
    if problem is None:
        problem = detail["msg"][:1].lower() + detail["msg"][1:]
    return _located(layers, camera, loc, problem)


def _camera_path(camera: str, loc: Sequence[Any]) -> tuple:
    return ("cameras", camera, *loc)


def _rank(layers: Layers, camera: str | None, loc: Sequence[Any]) -> tuple[int, int]:
    """Which setting of a leaf came last: (layer, 1 if the camera set it)."""
    if camera is not None:
        own = layers.origins.get(_camera_path(camera, loc))
        if own is not None:
            return own[1], 1
    inherited = layers.origins.get(tuple(loc))
    return (inherited[1], 0) if inherited else (0, 0)


def _located(layers: Layers, camera: str | None, loc: Sequence[Any], problem: str) -> ConfigError:
    path: tuple = tuple(loc)
    found = None
    if camera is not None:
        own = _camera_path(camera, loc)
        found = layers.origins.get(own)
        if found is not None or path not in layers.origins:
            # the camera set it, or nobody set exactly this key: the nearest key the camera set, else the top level
            found = found or layers.origin_of(own, floor=2)
            if found is not None or not loc or loc[0] not in SECTIONS:
                path = own
    if found is None:
        found = layers.origin_of(path)
    origin = found[0] if found else layers.main_origin
    key = dotted(path)
    if key in layers.env_keys:  # never echo what came from the environment
        problem = re.sub(r", got .*$", ", got the value of an environment variable", problem)
    return error_at(origin, key, problem)


# ---------------------------------------------------------------- building the service config

def camera_name_for(source: str | None) -> str:
    """The single-camera shorthand's name: a file's stem sanitised to [a-z0-9_-]{1,32}, else "main"."""
    if source_kind(source) != "file":
        return "main"
    stem = os.path.splitext(os.path.basename(source.rstrip("/\\")))[0]
    name = re.sub(r"[^a-z0-9_-]", "-", stem.lower())[:32]
    return name or "main"


def _deep_merge(base: Mapping, override: Mapping) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def build(layers: Layers, origin: str | None) -> ServiceConfig:
    raw = layers.merged
    top = {key: value for key, value in raw.items() if key != "cameras"}
    try:
        defaults = GlobalSections.model_validate(top)
    except ValidationError as error:
        raise reword(error, layers) from None

    main = layers.main_origin
    if "cameras" in raw:
        if raw.get("source") is not None:  # source: null (the embedded default's) is no conflict
            found = layers.origin_of(("source",))
            raise error_at(found[0] if found else main, "source",
                           "a top-level source is the single-camera shorthand; with cameras:, "
                           "set each camera's source under cameras.NAME.source")
        cameras_raw = _checked_cameras(raw["cameras"], layers)
        single = False
    else:
        cameras_raw = {camera_name_for(defaults.source): {"source": defaults.source}}
        single = True

    shared = {key: raw[key] for key in PER_CAMERA if key in raw}
    cameras: dict[str, CameraConfig] = {}
    for name, overrides in cameras_raw.items():
        if "name" in overrides:
            raise _located(layers, name, ("name",), "unknown key (a camera's name is its key under cameras:)")
        merged = _deep_merge(shared, overrides)
        try:
            camera = CameraConfig.model_validate({**merged, "name": name})
        except ValidationError as error:
            raise reword(error, layers, camera=name) from None
        cameras[name] = _expand_outputs(camera)

    _check_output_collisions(cameras, layers)
    _check_rules(defaults, cameras, layers)
    _check_http(defaults, layers)
    return ServiceConfig(
        **{name: getattr(defaults, name) for name in ServiceConfig.model_fields if hasattr(defaults, name)},
        cameras=cameras, single_camera=single, origin=origin, env_keys=frozenset(layers.env_keys))


def _checked_cameras(value: Any, layers: Layers) -> dict[str, dict]:
    def fail(path, problem):
        found = layers.origin_of(path)
        return error_at(found[0] if found else layers.main_origin, dotted(path), problem)

    if not isinstance(value, Mapping):
        raise fail(("cameras",), f"expected a mapping of camera name → camera, got {describe(value)}")
    if not value:
        raise fail(("cameras",), "must name at least one camera (or leave cameras: out and set source:)")
    cameras = {}
    for name, camera in value.items():
        if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
            shown = scalar_text(name) if isinstance(name, str) else describe(name)
            found = layers.origin_of(("cameras", name))
            raise error_at(found[0] if found else layers.main_origin, f"cameras.{key_text(name)}",
                           f"invalid camera name {shown}: use 1 to 32 of a-z 0-9 _ -")
        if not isinstance(camera, Mapping):
            raise fail(("cameras", name), f"expected a mapping (source: and any per-camera section), "
                                          f"got {describe(camera)}")
        if "source" not in camera:
            raise fail(("cameras", name, "source"), "missing: every camera needs a source (a file, a camera "
                                                    "index, a device or a URL)")
        cameras[name] = dict(camera)
    return cameras


def _expand_outputs(camera: CameraConfig) -> CameraConfig:
    output = camera.output
    expanded = {key: getattr(output, key).replace("{camera}", camera.name)
                for key in OUTPUT_PATHS if getattr(output, key) and "{camera}" in getattr(output, key)}
    if not expanded:
        return camera
    return camera.model_copy(update={"output": output.model_copy(update=expanded)})


def _check_output_collisions(cameras: Mapping[str, CameraConfig], layers: Layers) -> None:
    writers: dict[str, tuple[str, str]] = {}
    for name, camera in cameras.items():
        for key in OUTPUT_PATHS:
            path = getattr(camera.output, key)
            if not path:
                continue
            normal = os.path.normpath(path)
            if normal in writers:
                other, other_key = writers[normal]
                found = layers.origin_of(("cameras", name, "output", key), floor=2) or \
                    layers.origin_of(("output", key))
                origin = found[0] if found else layers.main_origin
                if other == name:
                    problem = f"camera {name} would write output.{other_key} and output.{key} to one file {path}"
                elif other_key == key:
                    problem = (f"cameras {other} and {name} would both write output.{key} {path}; "
                               f"put {{camera}} in the path")
                else:
                    problem = (f"cameras {other} (output.{other_key}) and {name} (output.{key}) would both "
                               f"write {path}; put {{camera}} in the path")
                raise ConfigError(f"{origin}: {problem}", origin=origin, key=f"output.{key}")
            writers[normal] = (name, key)


def _check_rules(defaults: GlobalSections, cameras: Mapping[str, CameraConfig], layers: Layers) -> None:
    found = layers.origin_of(("rules",))
    origin = found[0] if found else layers.main_origin
    activities = set(defaults.activities)
    for camera in cameras.values():
        activities.update(camera.activities)
    names: dict[str, int] = {}
    for index, rule in enumerate(defaults.rules):
        prefix = f"rules[{index}]"
        if rule.name in names:
            raise error_at(origin, f"{prefix}.name",
                           f"duplicate rule name {rule.name!r} (also rules[{names[rule.name]}])")
        names[rule.name] = index
        for key, reference in rule.references():
            activity, _, camera = reference.partition("@")
            if activity not in activities:
                raise error_at(origin, f"{prefix}.{key}", f"unknown activity {activity!r}"
                               + _hint(activity, activities, "activities"))
            if camera and camera not in cameras:
                raise error_at(origin, f"{prefix}.{key}", f"unknown camera {camera!r} in {reference!r}"
                               + _hint(camera, cameras, "cameras"))
        for position, camera in enumerate(rule.cameras or ()):
            if camera not in cameras:
                raise error_at(origin, f"{prefix}.cameras[{position}]", f"unknown camera {camera!r}"
                               + _hint(camera, cameras, "cameras"))


def _hint(name: str, known: Iterable[str], what: str) -> str:
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" ({what}: {', '.join(known)})" if known else f" (no {what} are defined)"


def _check_http(defaults: GlobalSections, layers: Layers) -> None:
    http = defaults.http
    if http.enabled == "false" or http.token is not None or is_loopback(http.host):
        return
    found = layers.origin_of(("http", "host"))
    raise error_at(found[0] if found else layers.main_origin, "http.host",
                   f"serving on {http.host!r} (not a loopback address) needs http.token, so that only "
                   f"who holds it sees the cameras (e.g. token: ${{EDGE_HAR_TOKEN}})")


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False
