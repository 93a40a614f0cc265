"""Loading: YAML (duplicate keys rejected), ``${VAR}``, layers, ``--set``, cameras, and the one-line errors.

Layers, later wins: built-in defaults ← ``base`` mapping ← the YAML file ← ``--set`` overrides.
The raw layers are deep-merged first; then each camera's mapping is made (the top-level
per-camera sections deep-merged with the camera's overrides, Frigate's way) and the whole
``ServiceConfig`` is validated by pydantic at once. Its first error is translated here, once,
into ``FILE: dotted.key: problem`` (``--set dotted.key: problem`` when an override set it),
by the table ``WORDING`` (pydantic error type → wording).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from edge.config.schema import (CameraConfig, AT_ERROR, CAMERA_KEYS, GLOBAL_ONLY, PER_CAMERA, SECTIONS, TOP_LEVEL,
                                ServiceConfig)
from edge.config.values import NAME_PATTERN, describe, key_text, scalar_text, source_kind

OVERRIDE_ORIGIN = "--set"
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
        try:
            pairs = value.items() if isinstance(value, dict) else enumerate(value)
            walked = [(key, *walk(item, (*path, key))) for key, item in pairs]
        finally:
            busy.discard(id(value))
        used = any(item_used for _, _, item_used in walked)
        result = ({key: item for key, item, _ in walked} if isinstance(value, dict)
                  else [item for _, item, _ in walked])
        if not used:
            done[id(value)] = result
        return result, used

    def substitute(text, path) -> tuple[str, bool]:
        names = [name for name in _ENV.findall(text) if name]   # "$${" matches with no name
        for name in names:
            if name not in env:
                raise error_at(origin, dotted((*prefix, *path)) or None,
                               f"environment variable {name} is not set (used as ${{{name}}})")
        if names and env_keys is not None:
            env_keys.add(dotted((*prefix, *path)))
        return _ENV.sub(lambda match: env[match.group(1)] if match.group(1) else "${", text), bool(names)

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


# ---------------------------------------------------------------- the models, walked by key

def _types(annotation: Any) -> list:
    """Every type named in an annotation (through Optional, Annotated, dict, tuple)."""
    args = get_args(annotation)
    if get_origin(annotation) is Literal:
        return [Literal]
    return [annotation] if not args else [found for arg in args for found in _types(arg)]


def _child(model: type[BaseModel], name: Any) -> tuple[Any, type[BaseModel] | None, bool]:
    """Key ``name`` of ``model``: (its field or None, the model it holds or None, whether in a dict or list)."""
    field = model.model_fields.get(name) if isinstance(name, str) else None
    if field is None:
        return None, None, False
    inner = next((t for t in _types(field.annotation) if isinstance(t, type) and issubclass(t, BaseModel)), None)
    shapes = {get_origin(field.annotation), *(get_origin(arg) for arg in get_args(field.annotation))}
    return field, inner, bool(shapes & {dict, tuple})


def _model_of(loc: Sequence[Any]) -> type[BaseModel] | None:
    """The model whose keys are at ``loc`` (a camera, an activity, a rule, a section), else None."""
    model, parts = ServiceConfig, list(loc)
    while parts:
        _, inner, container = _child(model, parts.pop(0))
        if inner is None or (container and not parts):
            return None
        if container:
            parts.pop(0)
        model = inner
    return model


def _field(loc: Sequence[Any]) -> Any:
    """The field of the key at ``loc``, None for an unknown key or a dict entry."""
    model = _model_of(loc[:-1]) if loc else None
    return _child(model, loc[-1])[0] if model is not None else None


def _what(field: Any) -> str:
    """What a key expects, in words: its ``What``, else said from its type and limits."""
    marks = {type(mark).__name__: mark for mark in (field.metadata if field else ())}
    if "What" in marks:
        return marks["What"].text
    types = _types(field.annotation) if field else []
    if Literal in types:
        return "one of " + ", ".join(repr(word) for word in get_args(field.annotation))
    if bool in types:
        return "true or false"
    ge, gt, le = (getattr(marks.get(name), name.lower(), None) for name in ("Ge", "Gt", "Le"))
    what = "an integer" if int in types else "a number"
    if ge is not None and le is not None:
        return f"{what} from {ge} to {le}"
    return what + (f" > {gt}" if gt is not None else f" ≥ {ge}" if ge is not None else "") + (
        f" and ≤ {le}" if le is not None else "")


def _leaf_paths() -> dict[str, str]:
    """Leaf name → its first dotted path, for "did you mean 'sampling.clip_len'?" on a misplaced key."""
    found: dict[str, str] = {}
    for section in SECTIONS:
        field, model, container = _child(ServiceConfig, section)
        for name in model.model_fields:
            found.setdefault(name, f"{section}.NAME.{name}" if container else f"{section}.{name}")
    return found


LEAF_PATHS = _leaf_paths()


def unknown_key_problem(name: Any, allowed: Iterable[str], dotted_key: str) -> str:
    close = difflib.get_close_matches(name, list(allowed), n=1) if isinstance(name, str) else []
    if close:
        return f"unknown key (did you mean {close[0]!r}?)"
    elsewhere = LEAF_PATHS.get(name) if isinstance(name, str) else None
    if elsewhere and elsewhere != dotted_key and "NAME" not in elsewhere and "[" not in elsewhere:
        return f"unknown key (did you mean {elsewhere!r}?)"
    return "unknown key"


def _shared_problem(section: str) -> str:
    return f"{section} is shared by all cameras: set it at the top level, not under a camera"


# ---------------------------------------------------------------- --set

def parse_override(text: Any, env: Mapping[str, str], env_keys: set[str]) -> tuple[tuple[str, ...], Any]:
    """``"dotted.key=value"`` → (key path, value parsed with yaml.safe_load); ConfigError ``--set KEY: ...``.

    Unknown keys are left to the validation (which names them the same way); here only what it
    cannot see: a key below a value, a key inside the rules list, and which values stay text.
    """
    if not isinstance(text, str) or "=" not in text:
        raise ConfigError(f"{OVERRIDE_ORIGIN} {scalar_text(text)}: expected KEY=VALUE, "
                          f"e.g. sampling.clip_len=8", origin=OVERRIDE_ORIGIN)
    key, raw = (part.strip() for part in text.split("=", 1))
    path = tuple(key.split("."))
    if not all(path):
        raise error_at(OVERRIDE_ORIGIN, key, "expected a dotted key such as sampling.clip_len")
    if path[0] == "rules" and len(path) > 1:
        raise error_at(OVERRIDE_ORIGIN, key, "rules is a list: set it whole, e.g. "
                                             "--set 'rules=[{name: no-smoking, kind: forbidden, activity: smoking}]'")
    for length in range(1, len(path)):
        field = _field(path[:length])
        if field is not None and _child(_model_of(path[:length - 1]), path[length - 1])[1] is None:
            raise error_at(OVERRIDE_ORIGIN, key, f"unknown key ({'.'.join(path[:length])} is a value, not a section)")
    leaf = CameraConfig.model_fields["source"] if path == ("source",) else _field(path)
    try:
        value = _safe_load_strict(raw)
    except yaml.MarkedYAMLError as error:
        raise error_at(OVERRIDE_ORIGIN, key, f"YAML syntax error in the value: "
                                             f"{' '.join(str(error.problem or error.context).split())}") from None
    except Exception as error:  # PyYAML constructors raise bare ValueError/KeyError for bad scalars
        raise error_at(OVERRIDE_ORIGIN, key, f"invalid YAML value: {_exception_text(error)}") from None
    # A path or device typed on the command line is text, even if it looks like a number or a date.
    if leaf is not None and str in _types(leaf.annotation) and value is not None \
            and not isinstance(value, (str, list, dict)):
        value = raw
    value = expand_env(value, OVERRIDE_ORIGIN, env, prefix=path, env_keys=env_keys)
    return path, value


# ---------------------------------------------------------------- pydantic's errors, in edge-har's words

class _Problem:
    """One pydantic error, with what its key expects."""

    def __init__(self, detail: dict, loc: tuple):
        self.loc, self.value, self.ctx = loc, detail.get("input"), detail.get("ctx") or {}
        # an item of a list key (rules[0].steps[1]): worded as the list's, "item 2 is ..."
        self.item = loc[-1] + 1 if loc and type(loc[-1]) is int and _field(loc[:-1]) else None

    @property
    def what(self) -> str:
        return _what(_field(self.loc[:-1] if self.item else self.loc))


def _expected(p: _Problem) -> str:
    return f"expected {p.what}, " + (f"item {p.item} is " if p.item else "got ") + describe(p.value)


def _must(p: _Problem) -> str:
    return f"must be {p.what}, got {scalar_text(p.value)}"


def _number(p: _Problem) -> str:
    hint = ""
    if isinstance(p.value, str):
        try:
            float(p.value)  # PyYAML reads 1e-3 (no dot, unsigned exponent) as text
            hint = " (write numbers with a dot and a signed exponent, e.g. 1.0e-3)"
        except ValueError:
            pass
    return _expected(p) + hint


def _missing(p: _Problem) -> str:
    hint = getattr(_model_of(p.loc[:-1]), "missing", None)
    return f"missing: {hint}" if hint else "missing (required)"


def _unknown(p: _Problem) -> str:
    parent, name = p.loc[:-1], p.loc[-1]
    in_camera = len(parent) == 2 and parent[0] == "cameras"
    if in_camera and name in GLOBAL_ONLY:
        return _shared_problem(name)
    model = _model_of(parent)
    allowed = CAMERA_KEYS if in_camera else tuple(model.model_fields) if model else ()
    return unknown_key_problem(name, allowed, dotted(p.loc[2:] if len(p.loc) > 2 and p.loc[0] == "cameras"
                                                    else p.loc))


WORDING = {   # pydantic error type → the problem's words
    "int_type": _expected, "bool_type": _expected, "string_type": _expected, "float_type": _number,
    "literal_error": lambda p: (_must if isinstance(p.value, str) else _expected)(p),
    "greater_than": _must, "greater_than_equal": _must, "less_than": _must, "less_than_equal": _must,
    "finite_number": _must, "string_pattern_mismatch": _must, "too_short": _must,
    "dict_type": lambda p: f"expected a mapping of keys, got {describe(p.value)}",
    "model_type": lambda p: f"expected a mapping of keys, got {describe(p.value)}",
    "tuple_type": lambda p: f"expected a list, got {describe(p.value)}",
    "missing": _missing, "extra_forbidden": _unknown,
    "value_error": lambda p: str(p.ctx.get("error", "invalid value")),
    AT_ERROR: lambda p: p.ctx["problem"],
}


def reword(error: ValidationError, layers: Layers) -> ConfigError:
    """The first pydantic error (an unknown key first: it explains the rest) as ``ORIGIN: dotted.key: problem``."""
    details = error.errors(include_url=False)
    detail = next((d for d in details if d["type"] == "extra_forbidden"), details[0])
    loc = tuple(part for part in detail["loc"] if part != "[key]")  # a bad dict key: name the key itself
    ctx = detail.get("ctx") or {}
    if detail["type"] == AT_ERROR:
        loc = (*loc, *ctx["at"])
    camera = loc[1] if len(loc) > 2 and loc[0] == "cameras" else None
    if "blame" in ctx:   # two keys disagree: blame the one set last
        blame = ctx["blame"]
        name = max(blame, key=lambda key: _rank(layers, camera, (*loc[:-1], key)))
        loc, problem = (*loc[:-1], name), blame[name]
    else:
        wording = WORDING.get(detail["type"])
        problem = wording(_Problem(detail, loc)) if wording else detail["msg"][:1].lower() + detail["msg"][1:]
    return _located(layers, camera, loc[2:] if camera else loc, problem, keyless=ctx.get("keyless", False))


def _camera_path(camera: str, loc: Sequence[Any]) -> tuple:
    return ("cameras", camera, *loc)


def _rank(layers: Layers, camera: str | None, loc: Sequence[Any]) -> tuple[int, int]:
    """Which setting of a leaf came last: (layer, 1 if the camera set it)."""
    rel = tuple(loc[2:]) if camera else tuple(loc)
    if camera is not None:
        own = layers.origins.get(_camera_path(camera, rel))
        if own is not None:
            return own[1], 1
    inherited = layers.origins.get(rel)
    return (inherited[1], 0) if inherited else (0, 0)


def _located(layers: Layers, camera: str | None, loc: Sequence[Any], problem: str,
             keyless: bool = False) -> ConfigError:
    """The error at ``loc`` (inside ``camera`` if given), naming who set it: the camera, else the top level."""
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
    if keyless:
        return ConfigError(f"{origin}: {problem}", origin=origin, key=key)
    if key in layers.env_keys:  # never echo what came from the environment
        problem = re.sub(r", got .*$", ", got the value of an environment variable", problem)
    return error_at(origin, key, problem)


# ---------------------------------------------------------------- building the service config

def camera_name_for(source: Any) -> str:
    """The single-camera shorthand's name: a file's stem sanitised to [a-z0-9_-]{1,32}, else "main"."""
    if not isinstance(source, str) or source_kind(source) != "file":
        return "main"
    stem = os.path.splitext(os.path.basename(source.rstrip("/\\")))[0]
    return re.sub(r"[^a-z0-9_-]", "-", stem.lower())[:32] or "main"


def _deep_merge(base: Mapping, override: Mapping) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def build(layers: Layers, origin: str | None) -> ServiceConfig:
    """The ServiceConfig of the merged layers; ConfigError (one line) for the first mistake."""
    raw = layers.merged
    for key in raw:
        if key not in TOP_LEVEL:
            raise _located(layers, None, (key,), unknown_key_problem(key, TOP_LEVEL, key_text(key)))
    if "cameras" in raw:
        if raw.get("source") is not None:  # source: null (the embedded default's) is no conflict
            raise _located(layers, None, ("source",), "a top-level source is the single-camera shorthand; with "
                                                      "cameras:, set each camera's source under cameras.NAME.source")
        cameras = _checked_cameras(raw["cameras"], layers)
    else:
        cameras = {camera_name_for(raw.get("source")): {"source": raw.get("source")}}
    shared = {key: raw[key] for key in PER_CAMERA if key in raw}
    data = {key: value for key, value in raw.items() if key not in ("source", "cameras")}
    data["cameras"] = {name: {**_deep_merge(shared, overrides), "name": name} for name, overrides in cameras.items()}
    try:
        return ServiceConfig.model_validate({**data, "single_camera": "cameras" not in raw, "origin": origin,
                                             "env_keys": frozenset(layers.env_keys)})
    except ValidationError as error:
        raise reword(error, layers) from None


def _checked_cameras(value: Any, layers: Layers) -> dict[str, dict]:
    def fail(path, problem):
        return _located(layers, None, path, problem)

    if not isinstance(value, Mapping):
        raise fail(("cameras",), f"expected a mapping of camera name → camera, got {describe(value)}")
    if not value:
        raise fail(("cameras",), "must name at least one camera (or leave cameras: out and set source:)")
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
        if "name" in camera:
            raise fail(("cameras", name, "name"), "unknown key (a camera's name is its key under cameras:)")
    return {name: dict(camera) for name, camera in value.items()}
