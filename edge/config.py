"""The run configuration: frozen dataclasses filled from ``yaml.safe_load``.

Layers, later wins: built-in defaults ← ``base`` mapping ← the YAML file ←
``--set dotted.key=value`` overrides. Every user mistake (unknown key, wrong
type, out-of-range value, YAML syntax error, missing file) is a
``ConfigError`` whose ``str()`` is one line naming the file (or ``--set KEY``)
and the dotted key path, e.g.::

    config.yaml: sampling.clip_len: must be an integer ≥ 1, got 0
    config.yaml: sampling.clip_lenn: unknown key (did you mean 'clip_len'?)
    config.yaml:12:3: YAML syntax error: mapping values are not allowed here

Normalised forms: ``source`` is always a string or None (a camera index given
as the integer 0 is stored as ``"0"``); ``inference.num_requests`` is an int,
or None for "auto"; ``output.progress`` and ``reconnect.live`` are the strings
"auto", "true" or "false"; ``postprocess.smoothing`` is always a string
``none``, ``mean:N`` or ``ema:A`` (``PostprocessConfig.smoothing_spec`` parses it). Relative paths are relative to the current directory.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.resources
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

import yaml

from edge.urls import URL_SCHEMES, mask_credentials  # noqa: F401  (mask_credentials re-exported)

DEFAULT_OUTPUT_DIR = "edge-har-out"
OVERRIDE_ORIGIN = "--set"


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


class _Invalid(Exception):
    """A value failed its check; carries the problem text, the caller adds origin and key."""


# ---------------------------------------------------------------- describing values

def _scalar_text(value: Any) -> str:
    """A short one-line rendering of a value; never walks containers (aliases can make them huge)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value[:60] + ("…" if len(value) > 60 else ""))
    if isinstance(value, int) and abs(value) > 10**30:
        return "a very large integer"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} items"
    return f"a {type(value).__name__}"


def _describe(value: Any) -> str:
    """What a value is, for "expected X, got Y"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({_scalar_text(value)})"
    if isinstance(value, int):
        return f"an integer ({_scalar_text(value)})"
    if isinstance(value, float):
        return f"a number ({_scalar_text(value)})"
    if isinstance(value, str):
        return f"the string {_scalar_text(value)}"
    if isinstance(value, (Mapping, list, tuple)):
        return _scalar_text(value)
    if isinstance(value, bytes):
        return "binary data"
    return f"a {type(value).__name__} ({str(value)[:40]})"


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return key if key.isprintable() else repr(key)
    return _scalar_text(key) if key is None or isinstance(key, bool) else str(key)[:60]


# ---------------------------------------------------------------- value checks
# Each check takes the raw YAML value and returns the normalised one or raises _Invalid.

def _bounds_text(minimum, maximum, exclusive_min=False) -> str:
    if minimum is not None and maximum is not None:
        return f" > {minimum} and ≤ {maximum}" if exclusive_min else f" from {minimum} to {maximum}"
    if minimum is not None:
        return f" > {minimum}" if exclusive_min else f" ≥ {minimum}"
    return ""


def _integer(minimum: int | None = None, maximum: int | None = None) -> Callable[[Any], int]:
    what = "an integer" + _bounds_text(minimum, maximum)

    def check(value):
        if isinstance(value, bool) or not isinstance(value, int):  # YAML true is not 1
            raise _Invalid(f"expected {what}, got {_describe(value)}")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise _Invalid(f"must be {what}, got {_scalar_text(value)}")
        return value

    return check


def _to_float(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        hint = ""
        if isinstance(value, str):
            try:
                float(value)
                # PyYAML reads 1e-3 (no dot, unsigned exponent) as text.
                hint = " (write numbers with a dot and a signed exponent, e.g. 1.0e-3)"
            except ValueError:
                pass
        raise _Invalid(f"expected {what}, got {_describe(value)}{hint}")
    try:
        number = float(value)
    except OverflowError:
        raise _Invalid(f"must be {what}, got {_scalar_text(value)}") from None
    if not math.isfinite(number):
        raise _Invalid(f"must be {what}, got {_scalar_text(value)}")
    return number


def _number(minimum: float | None = None, maximum: float | None = None,
            exclusive_min: bool = False) -> Callable[[Any], float]:
    what = "a number" + _bounds_text(minimum, maximum, exclusive_min)

    def check(value):
        number = _to_float(value, what)
        too_low = minimum is not None and (number <= minimum if exclusive_min else number < minimum)
        if too_low or (maximum is not None and number > maximum):
            raise _Invalid(f"must be {what}, got {_scalar_text(value)}")
        return number

    return check


def _choice(*options: str) -> Callable[[Any], str]:
    what = "one of " + ", ".join(repr(option) for option in options)

    def check(value):
        if not isinstance(value, str):
            raise _Invalid(f"expected {what}, got {_describe(value)}")
        if value.strip().lower() not in options:
            raise _Invalid(f"must be {what}, got {_scalar_text(value)}")
        return value.strip().lower()

    return check


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"expected true or false, got {_describe(value)}")
    return value


def _auto_flag(value: Any) -> str:
    """auto | true | false (YAML booleans or strings; null means auto) → "auto" | "true" | "false"."""
    if value is None:
        return "auto"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.strip().lower() in ("auto", "true", "false"):
        return value.strip().lower()
    raise _Invalid(f"expected 'auto', true or false, got {_describe(value)}")


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"expected a string, got {_describe(value)}")
    if not value.strip() or "\x00" in value:
        raise _Invalid(f"must be a non-empty string, got {_scalar_text(value)}")
    return value


def _optional_path(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Invalid(f"expected a path (a string) or null, got {_describe(value)}")
    if not value.strip() or "\x00" in value:
        raise _Invalid(f"must be a non-empty path or null, got {_scalar_text(value)}")
    return value


def _num_requests(value: Any) -> int | None:
    what = "an integer ≥ 1 or 'auto'"
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"expected {what}, got {_describe(value)}")
    if value < 1:
        raise _Invalid(f"must be {what}, got {_scalar_text(value)}")
    return value


def _mean(value: Any) -> tuple[float, float, float]:
    what = "a list of 3 numbers (R, G, B)"
    if not isinstance(value, (list, tuple)):
        raise _Invalid(f"expected {what}, got {_describe(value)}")
    if len(value) != 3:
        raise _Invalid(f"must be {what}, got {_scalar_text(value)}")
    channels = []
    for position, item in enumerate(value, start=1):
        try:
            channels.append(_to_float(item, "a finite number"))
        except _Invalid:
            raise _Invalid(f"expected {what}, item {position} is {_describe(item)}") from None
    return tuple(channels)


@dataclass(frozen=True)
class SmoothingSpec:
    """Parsed ``postprocess.smoothing``: kind "none" | "mean" (``window`` clips) | "ema" (``alpha``)."""

    kind: str
    window: int | None = None
    alpha: float | None = None

    def __str__(self) -> str:
        if self.kind == "mean":
            return f"mean:{self.window}"
        if self.kind == "ema":
            return f"ema:{self.alpha!r}"
        return "none"


_SMOOTHING_WHAT = "'none', 'mean:N' (N ≥ 1) or 'ema:A' (0 < A ≤ 1)"


def _smoothing_from_parts(kind: str, amount: Any, shown: Any) -> SmoothingSpec:
    if kind == "mean":
        if isinstance(amount, str) and re.fullmatch(r"\+?\d+", amount.strip()):
            amount = int(amount)
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
            raise _Invalid(f"must be {_SMOOTHING_WHAT}, got {_scalar_text(shown)}")
        return SmoothingSpec("mean", window=amount)
    if isinstance(amount, str):
        try:
            amount = float(amount)
        except ValueError:
            raise _Invalid(f"must be {_SMOOTHING_WHAT}, got {_scalar_text(shown)}") from None
    if isinstance(amount, bool) or not isinstance(amount, (int, float)):
        raise _Invalid(f"must be {_SMOOTHING_WHAT}, got {_scalar_text(shown)}")
    try:
        alpha = float(amount)
    except OverflowError:
        alpha = math.inf
    if not (math.isfinite(alpha) and 0.0 < alpha <= 1.0):
        raise _Invalid(f"must be {_SMOOTHING_WHAT}, got {_scalar_text(shown)}")
    return SmoothingSpec("ema", alpha=alpha)


def _smoothing_spec(value: Any) -> SmoothingSpec:
    if value is None:
        return SmoothingSpec("none")
    if isinstance(value, Mapping):  # {mean: 5} or {ema: 0.3}
        if len(value) != 1 or next(iter(value)) not in ("mean", "ema"):
            raise _Invalid(f"expected {_SMOOTHING_WHAT} or a mapping {{mean: N}} / {{ema: A}}, "
                           f"got a mapping with keys {', '.join(_key_text(k) for k in list(value)[:5])}")
        ((kind, amount),) = value.items()
        if isinstance(amount, str):  # {mean: "5"} is a quoted number, not the shorthand form
            raise _Invalid(f"must be {_SMOOTHING_WHAT}, got {kind}: {_scalar_text(amount)}")
        return _smoothing_from_parts(kind, amount, f"{kind}:{_scalar_text(amount)}")
    if not isinstance(value, str):
        raise _Invalid(f"expected {_SMOOTHING_WHAT}, got {_describe(value)}")
    text = value.strip().lower()
    if text == "none":
        return SmoothingSpec("none")
    match = re.fullmatch(r"(mean|ema)\s*:\s*(\S+)", text)
    if match is None:
        raise _Invalid(f"must be {_SMOOTHING_WHAT}, got {_scalar_text(value)}")
    return _smoothing_from_parts(match.group(1), match.group(2), value)


def _smoothing(value: Any) -> str:
    return str(_smoothing_spec(value))


def parse_smoothing(value: Any) -> SmoothingSpec:
    """Parse any accepted ``postprocess.smoothing`` form; ConfigError if it is not one."""
    try:
        return _smoothing_spec(value)
    except _Invalid as error:
        raise ConfigError(f"postprocess.smoothing: {error}", key="postprocess.smoothing") from None


def _source(value: Any) -> str | None:
    what = "a file path, a camera index ≥ 0, a device path or an rtsp:// / http(s):// URL"
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _Invalid(f"expected {what}, got {_describe(value)}")
    if isinstance(value, int):
        if value < 0:
            raise _Invalid(f"must be {what}, got {_scalar_text(value)}")
        return str(value)
    if not value.strip() or "\x00" in value:
        raise _Invalid(f"must be {what}, got {_scalar_text(value)}")
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", value)
    if scheme and scheme.group(1).lower() not in URL_SCHEMES:
        raise _Invalid(f"unsupported URL scheme {scheme.group(1)!r} (use one of "
                       f"{', '.join(s + '://' for s in URL_SCHEMES)}), got {_scalar_text(mask_credentials(value))}")
    return value


def source_kind(source: str | None) -> str:
    """"sample" (None), "camera" (index or /dev/ path), "url" or "file"."""
    if source is None:
        return "sample"
    if source.isdigit() or source.startswith("/dev/"):
        return "camera"
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", source):
        return "url"
    return "file"


# ---------------------------------------------------------------- the dataclasses

def _leaf(default: Any = None, check: Callable[[Any], Any] = _text, *, factory=None,
          auto_is_none: bool = False, takes_text: bool = False):
    """A config key: its default, its check, how None is written back ("auto" or null)."""
    metadata = {"check": check, "auto_is_none": auto_is_none, "takes_text": takes_text}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class ModelConfig:
    path: str | None = _leaf(None, _optional_path, takes_text=True)      # None = real model if fetched, else demo
    labels: str | None = _leaf(None, _optional_path, takes_text=True)    # None = bundled Kinetics-400


@dataclass(frozen=True)
class SamplingConfig:
    mode: str = _leaf("batch", _choice("batch", "rolling"))
    clip_len: int = _leaf(16, _integer(1))
    frame_step: int = _leaf(1, _integer(1))
    stride: int = _leaf(1, _integer(1))      # rolling mode only; ignored in batch mode


@dataclass(frozen=True)
class PreprocessConfig:
    size: int = _leaf(112, _integer(1))
    mean: tuple[float, float, float] = _leaf(check=_mean, factory=lambda: (114.7748, 107.7354, 99.4750))
    interpolation: str = _leaf("linear", _choice("linear", "area"))


@dataclass(frozen=True)
class InferenceConfig:
    device: str = _leaf("CPU", _text, takes_text=True)
    precision: str = _leaf("auto", _choice("auto", "f32", "bf16", "f16"))
    performance_hint: str = _leaf("latency", _choice("latency", "throughput"))
    num_requests: int | None = _leaf(None, _num_requests, auto_is_none=True)   # None = auto
    cache_dir: str | None = _leaf(None, _optional_path, takes_text=True)


@dataclass(frozen=True)
class PostprocessConfig:
    top_k: int = _leaf(5, _integer(1, 1000))
    smoothing: str = _leaf("none", _smoothing)     # normalised: "none", "mean:N" or "ema:A"
    threshold: float = _leaf(0.0, _number(0.0, 1.0))

    @property
    def smoothing_spec(self) -> SmoothingSpec:
        return parse_smoothing(self.smoothing)


@dataclass(frozen=True)
class OutputConfig:
    display: bool = _leaf(False, _flag)
    video: str | None = _leaf(None, _optional_path, takes_text=True)
    events: str | None = _leaf(None, _optional_path, takes_text=True)
    include_scores: bool = _leaf(False, _flag)
    summary: str | None = _leaf(None, _optional_path, takes_text=True)
    log_every_s: float = _leaf(10.0, _number(0.0, exclusive_min=True))
    overwrite: bool = _leaf(False, _flag)             # events append unless true
    overlay_stats: bool = _leaf(True, _flag)
    progress: str = _leaf("auto", _auto_flag)   # "auto" (files on a terminal) | "true" | "false"


@dataclass(frozen=True)
class ReconnectConfig:
    attempts: int = _leaf(10, _integer(0))
    delay_s: float = _leaf(0.5, _number(0.0, exclusive_min=True))
    max_delay_s: float = _leaf(10.0, _number(0.0, exclusive_min=True))   # also ≥ delay_s
    live: str = _leaf("auto", _auto_flag)        # "auto" (cameras and URLs) | "true" | "false"


@dataclass(frozen=True)
class Config:
    source: str | None = _leaf(None, _source)      # None = the bundled sample clip
    model: ModelConfig = field(default_factory=ModelConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    reconnect: ReconnectConfig = field(default_factory=ReconnectConfig)

    @property
    def live(self) -> bool:
        """Whether the source is treated as live: reconnect.live, or auto (cameras and URLs)."""
        if self.reconnect.live != "auto":
            return self.reconnect.live == "true"
        return source_kind(self.source) in ("camera", "url")


# The schema, derived from the dataclasses: section name → class; top-level leaves have no section.
_SECTIONS: dict[str, type] = {
    "model": ModelConfig, "sampling": SamplingConfig, "preprocess": PreprocessConfig,
    "inference": InferenceConfig, "postprocess": PostprocessConfig, "output": OutputConfig,
    "reconnect": ReconnectConfig,
}
_TOP_LEVEL = [f.name for f in dataclasses.fields(Config)]
_LEAVES: dict[str, dataclasses.Field] = {"source": dataclasses.fields(Config)[0]}
for _section, _cls in _SECTIONS.items():
    for _field in dataclasses.fields(_cls):
        _LEAVES[f"{_section}.{_field.name}"] = _field


def _error(origin: str, key: str, problem: str) -> ConfigError:
    where = f"{OVERRIDE_ORIGIN} {key}" if origin == OVERRIDE_ORIGIN else f"{origin}: {key}"
    return ConfigError(f"{where}: {problem}", origin=origin, key=key)


def _unknown_key(origin: str, prefix: str, key: Any, allowed: Iterable[str]) -> ConfigError:
    name = _key_text(key)
    dotted = f"{prefix}{name}"
    close = difflib.get_close_matches(name, list(allowed), n=1) if isinstance(key, str) else []
    if close:
        hint = f" (did you mean {close[0]!r}?)"
    else:  # a key put in the wrong section, e.g. clip_len at the top level
        elsewhere = [path for path in _LEAVES if path.rsplit(".", 1)[-1] == name and path != dotted]
        hint = f" (did you mean {elsewhere[0]!r}?)" if elsewhere else ""
    return _error(origin, dotted, f"unknown key{hint}")


# ---------------------------------------------------------------- layering

class _Layers:
    """Raw values per dotted key, with the origin and layer number of whoever set them last."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[Any, str, int]] = {}
        self.count = 0

    def add_mapping(self, mapping: Any, origin: str) -> None:
        self.count += 1
        if mapping is None:  # an empty file or one with only comments: all defaults
            return
        if not isinstance(mapping, Mapping):
            raise ConfigError(f"{origin}: the top level must be a mapping of keys "
                              f"({', '.join(_TOP_LEVEL)}), got {_describe(mapping)}", origin=origin)
        for key, value in mapping.items():
            if key in _SECTIONS:
                self._add_section(key, value, origin)
            elif key == "source":
                self.values["source"] = (value, origin, self.count)
            else:
                raise _unknown_key(origin, "", key, _TOP_LEVEL)

    def _add_section(self, section: str, value: Any, origin: str) -> None:
        if value is None:  # "model:" with every key commented out
            return
        if not isinstance(value, Mapping):
            raise _error(origin, section, f"expected a mapping of keys, got {_describe(value)}")
        names = [f.name for f in dataclasses.fields(_SECTIONS[section])]
        for key, item in value.items():
            if key not in names:
                raise _unknown_key(origin, f"{section}.", key, names)
            self.values[f"{section}.{key}"] = (item, origin, self.count)

    def add_override(self, text: str) -> None:
        self.count += 1
        if not isinstance(text, str) or "=" not in text:
            raise ConfigError(f"{OVERRIDE_ORIGIN} {_scalar_text(text)}: expected KEY=VALUE, "
                              f"e.g. sampling.clip_len=8", origin=OVERRIDE_ORIGIN)
        key, raw = (part.strip() for part in text.split("=", 1))
        parts = key.split(".")
        if parts[0] in _SECTIONS and len(parts) == 1:
            self._add_section(key, _parse_override_value(key, raw), OVERRIDE_ORIGIN)
            return
        if key not in _LEAVES:
            if parts[0] in _SECTIONS and len(parts) == 2:
                names = [f.name for f in dataclasses.fields(_SECTIONS[parts[0]])]
                raise _unknown_key(OVERRIDE_ORIGIN, f"{parts[0]}.", parts[1], names)
            close = difflib.get_close_matches(key, list(_LEAVES), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _error(OVERRIDE_ORIGIN, key, f"unknown key{hint}")
        value = _parse_override_value(key, raw)
        # A path or device typed on the command line is text, even if it looks like a number or a date.
        if _LEAVES[key].metadata["takes_text"] and value is not None and not isinstance(
                value, (str, list, dict)):
            value = raw
        self.values[key] = (value, OVERRIDE_ORIGIN, self.count)


def _parse_override_value(key: str, raw: str) -> Any:
    try:
        return yaml.safe_load(raw)
    except yaml.MarkedYAMLError as error:
        raise _error(OVERRIDE_ORIGIN, key, f"YAML syntax error in the value: {error.problem or error.context}") from None
    except Exception as error:  # PyYAML constructors raise bare ValueError/KeyError for bad scalars
        raise _error(OVERRIDE_ORIGIN, key, f"invalid YAML value: {_exception_text(error)}") from None


def _exception_text(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:200] or type(error).__name__


def _build(layers: _Layers) -> Config:
    validated: dict[str, Any] = {}
    for key, (raw, origin, _) in layers.values.items():
        try:
            validated[key] = _LEAVES[key].metadata["check"](raw)
        except _Invalid as problem:
            raise _error(origin, key, str(problem)) from None
    delay = validated.get("reconnect.delay_s", ReconnectConfig.delay_s)
    max_delay = validated.get("reconnect.max_delay_s", ReconnectConfig.max_delay_s)
    if max_delay < delay:  # blame whichever was set last
        max_layer = layers.values.get("reconnect.max_delay_s", (None, "", 0))[2]
        delay_layer = layers.values.get("reconnect.delay_s", (None, "", 0))[2]
        if delay_layer > max_layer:
            origin = layers.values["reconnect.delay_s"][1]
            raise _error(origin, "reconnect.delay_s",
                         f"must be ≤ reconnect.max_delay_s ({max_delay!r}), got {delay!r}")
        origin = layers.values["reconnect.max_delay_s"][1]
        raise _error(origin, "reconnect.max_delay_s",
                     f"must be ≥ reconnect.delay_s ({delay!r}), got {max_delay!r}")
    sections = {}
    for section, cls in _SECTIONS.items():
        prefix = f"{section}."
        sections[section] = cls(**{k[len(prefix):]: v for k, v in validated.items() if k.startswith(prefix)})
    return Config(source=validated.get("source"), **sections)


# ---------------------------------------------------------------- public loaders

def _parse_yaml(text: str | bytes, origin: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = " ".join(str(error.problem or error.context or "invalid YAML").split())
        where = f"{origin}:{mark.line + 1}:{mark.column + 1}" if mark is not None else origin
        raise ConfigError(f"{where}: YAML syntax error: {problem}", origin=origin) from None
    except yaml.YAMLError as error:  # e.g. a ReaderError: bytes that are not UTF-8 or unprintable
        raise ConfigError(f"{origin}: YAML error: {_exception_text(error)}", origin=origin) from None
    except RecursionError:
        raise ConfigError(f"{origin}: YAML error: the document is nested too deeply", origin=origin) from None
    except Exception as error:  # PyYAML constructors raise bare ValueError/KeyError (e.g. 2001-02-30)
        raise ConfigError(f"{origin}: YAML error: invalid value ({_exception_text(error)})", origin=origin) from None


def _read_file(path: str | os.PathLike) -> tuple[bytes, str]:
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


def load_config(path: str | os.PathLike | None = None, overrides: Iterable[str] = (), *,
                base: Mapping | None = None) -> Config:
    """Defaults ← ``base`` ← the YAML file at ``path`` ← ``overrides`` ("dotted.key=value").

    Each override value is parsed with ``yaml.safe_load`` and checked like a file
    value (``sampling.clip_len=8`` is an int, ``inference.num_requests=auto`` is
    auto, ``source=0`` is camera "0"). Raises ConfigError (one line) for any
    mistake; errors in overrides name ``--set KEY``.
    """
    layers = _Layers()
    if base is not None:
        layers.add_mapping(base, "<base>")
    if path is not None:
        text, origin = _read_file(path)
        layers.add_mapping(_parse_yaml(text, origin), origin)
    if isinstance(overrides, str):  # one override passed bare
        overrides = (overrides,)
    for override in overrides:
        layers.add_override(override)
    return _build(layers)


def config_from_mapping(mapping: Any, origin: str = "<mapping>") -> Config:
    """A Config from an already-parsed mapping (defaults for missing keys); ConfigError otherwise."""
    layers = _Layers()
    layers.add_mapping(mapping, origin)
    return _build(layers)


def config_from_yaml(text: str | bytes, origin: str = "<yaml>") -> Config:
    """A Config from YAML text; ConfigError (one line) for syntax or value mistakes."""
    return config_from_mapping(_parse_yaml(text, origin), origin)


def config_to_mapping(config: Config) -> dict:
    """Plain dict of every key (lists, strings, numbers, "auto"), loadable again."""
    def value_of(obj, f: dataclasses.Field):
        value = getattr(obj, f.name)
        if value is None and f.metadata.get("auto_is_none"):
            return "auto"
        return list(value) if isinstance(value, tuple) else value

    mapping: dict[str, Any] = {"source": config.source}
    for section in _SECTIONS:
        obj = getattr(config, section)
        mapping[section] = {f.name: value_of(obj, f) for f in dataclasses.fields(obj)}
    return mapping


def config_to_yaml(config: Config) -> str:
    """The effective configuration as YAML; ``config_from_yaml(config_to_yaml(c)) == c``."""
    mapping = config_to_mapping(config)
    text = yaml.safe_dump(mapping, sort_keys=False, allow_unicode=True)
    if yaml.safe_load(text) != mapping:  # PyYAML writes some line-break characters (U+0085) raw
        text = yaml.safe_dump(mapping, sort_keys=False, allow_unicode=False)
    return text


def embedded_default_mapping() -> dict:
    """What ``edge-har run`` uses without ``-c``: defaults plus outputs under ``edge-har-out/``.

    Read from the package file ``edge/data/default.yaml``; a fresh dict each call.
    """
    text = importlib.resources.files("edge").joinpath("data/default.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text) or {}
