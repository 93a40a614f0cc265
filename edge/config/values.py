"""The value types pydantic has no built-in for, and how a value is shown in an error.

Numbers, flags and choices are pydantic's own (``StrictInt`` with ``Field(ge=...)``,
``Literal``, ...). What is here: the ``auto`` words (``AutoBool``, ``AutoOrInteger``),
text and paths, the source, names, the RGB mean, label lists and the smoothing spec.
A custom check raises ``ValueError`` with the whole problem ("must be ..., got ...");
``What`` tells the error table what a key expects when pydantic's own check fails.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Optional

from pydantic import (AfterValidator, BeforeValidator, Field, PlainSerializer, PlainValidator, StrictBool, StrictInt,
                      StrictStr, WithJsonSchema)

from edge.urls import URL_SCHEMES, mask_credentials, source_kind  # noqa: F401  (source_kind re-exported)

NAME_PATTERN = r"[a-z0-9_-]{1,32}"


@dataclass(frozen=True)
class What:
    """Field metadata: what the key expects, in words ("an integer ≥ 1 or 'auto'")."""

    text: str


# ---------------------------------------------------------------- describing values

def scalar_text(value: Any) -> str:
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


def describe(value: Any) -> str:
    """What a value is, for "expected X, got Y"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({scalar_text(value)})"
    if isinstance(value, int):
        return f"an integer ({scalar_text(value)})"
    if isinstance(value, float):
        return f"a number ({scalar_text(value)})"
    if isinstance(value, str):
        return f"the string {scalar_text(value)}"
    if isinstance(value, (Mapping, list, tuple)):
        return scalar_text(value)
    if isinstance(value, bytes):
        return "binary data"
    return f"a {type(value).__name__} ({str(value)[:40]})"


def key_text(key: Any) -> str:
    if isinstance(key, str):
        return key if key.isprintable() else repr(key)
    return scalar_text(key) if key is None or isinstance(key, bool) else str(key)[:60]


def _custom(check, schema: dict, python_type: Any, serialize=None) -> Any:
    """A type checked entirely by ``check`` (which raises ValueError with the problem), documented by ``schema``."""
    extra = [PlainSerializer(serialize)] if serialize else []
    return Annotated[(python_type, PlainValidator(check, json_schema_input_type=python_type),
                      WithJsonSchema(schema), *extra)]


# ---------------------------------------------------------------- the auto words

def _auto_word(value: Any) -> Any:
    """``auto`` (any case, or null) → None; the YAML words true/false written as text → booleans."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return None
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


_SHOW_AUTO = PlainSerializer(lambda value: "auto" if value is None else value)

# auto | true | false: None means auto (the consumer decides), config show prints "auto".
AutoBool = Annotated[Optional[StrictBool], BeforeValidator(_auto_word), _SHOW_AUTO, What("'auto', true or false"),
                     WithJsonSchema({"anyOf": [{"enum": ["auto", "true", "false"]}, {"type": "boolean"},
                                               {"type": "null"}]})]
# An integer ≥ 1, or auto (None).
AutoOrInteger = Annotated[Optional[Annotated[StrictInt, Field(ge=1)]], BeforeValidator(_auto_word), _SHOW_AUTO,
                          What("an integer ≥ 1 or 'auto'"),
                          WithJsonSchema({"anyOf": [{"const": "auto"}, {"type": "integer", "minimum": 1},
                                                    {"type": "null"}]})]


# ---------------------------------------------------------------- text and paths

def _filled(what: str):
    def check(value):
        if value is not None and (not value.strip() or "\x00" in value):
            raise ValueError(f"must be {what}, got {scalar_text(value)}")
        return value
    return check


Text = Annotated[StrictStr, AfterValidator(_filled("a non-empty string")), What("a string")]
OptionalText = Annotated[Optional[StrictStr], AfterValidator(_filled("a non-empty string")),
                         What("a string or null")]
OptionalPath = Annotated[Optional[StrictStr], AfterValidator(_filled("a non-empty path or null")),
                         What("a path (a string) or null")]


# ---------------------------------------------------------------- the source

SOURCE_WHAT = "a file path, a camera index ≥ 0, a device path or an rtsp:// / http(s):// URL"


def _source(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"expected {SOURCE_WHAT}, got {describe(value)}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"must be {SOURCE_WHAT}, got {scalar_text(value)}")
        return str(value)
    if not value.strip() or "\x00" in value:
        raise ValueError(f"must be {SOURCE_WHAT}, got {scalar_text(value)}")
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", value)
    if scheme and scheme.group(1).lower() not in URL_SCHEMES:
        raise ValueError(f"unsupported URL scheme {scheme.group(1)!r} (use one of "
                         f"{', '.join(s + '://' for s in URL_SCHEMES)}), got {scalar_text(mask_credentials(value))}")
    return value


# A string or None (camera index 0 is "0").
Source = _custom(_source, {"anyOf": [{"type": "string", "minLength": 1}, {"type": "integer", "minimum": 0},
                                     {"type": "null"}]}, Optional[str])


# ---------------------------------------------------------------- names

def _name(what: str, reserved: tuple[str, ...] = ()):
    def check(value):
        if not isinstance(value, str):
            raise ValueError(f"expected a {what} name matching {NAME_PATTERN}, got {describe(value)}")
        if not re.fullmatch(NAME_PATTERN, value):
            raise ValueError(f"invalid {what} name {scalar_text(value)}: use 1 to 32 of a-z 0-9 _ -")
        if value in reserved:
            raise ValueError(f"{what} name {value!r} is reserved")
        return value
    return check


CameraName = _custom(_name("camera"), {"type": "string", "pattern": f"^{NAME_PATTERN}$"}, str)
ActivityName = _custom(_name("activity", reserved=("none",)),  # "none" is what MQTT says when no activity runs
                       {"type": "string", "pattern": f"^{NAME_PATTERN}$", "not": {"const": "none"}}, str)


def check_camera_name(value: Any) -> str:
    return _name("camera")(value)


# ---------------------------------------------------------------- lists

def _finite(value: Any) -> bool:
    try:
        return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(float(value))
    except OverflowError:
        return False


def _mean(value: Any) -> tuple[float, float, float] | None:
    what = "a list of 3 numbers (R, G, B) or null"
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"expected {what}, got {describe(value)}")
    if len(value) != 3:
        raise ValueError(f"must be {what}, got {scalar_text(value)}")
    for position, item in enumerate(value, start=1):
        if not _finite(item):
            raise ValueError(f"expected {what}, item {position} is {describe(item)}")
    return tuple(float(item) for item in value)


def _labels(value: Any) -> tuple[str, ...]:
    what = "a non-empty list of model labels (strings)"
    if isinstance(value, str):
        raise ValueError(f"expected {what}, got {describe(value)} (write [{value!r}])")
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"expected {what}, got {describe(value)}")
    if not value:
        raise ValueError(f"must be {what}, got an empty list")
    for position, item in enumerate(value, start=1):
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"expected {what}, item {position} is {describe(item)}")
    return tuple(value)


Mean = _custom(_mean, {"anyOf": [{"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3},
                                 {"type": "null"}]}, Optional[tuple[float, float, float]],
               serialize=lambda value: None if value is None else list(value))
Labels = _custom(_labels, {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
                 tuple[str, ...], serialize=list)


# ---------------------------------------------------------------- smoothing

@dataclass(frozen=True)
class SmoothingSpec:
    """Parsed ``postprocess.smoothing``: kind "none" | "mean" (``window`` clips) | "ema" (``alpha``).

    ``str()`` gives the normal text form: ``none``, ``mean:N`` or ``ema:A``.
    """

    kind: str
    window: int | None = None
    alpha: float | None = None

    def __str__(self) -> str:
        if self.kind == "mean":
            return f"mean:{self.window}"
        if self.kind == "ema":
            return f"ema:{self.alpha!r}"
        return "none"


SMOOTHING_WHAT = "'none', 'mean:N' (N ≥ 1) or 'ema:A' (0 < A ≤ 1)"


def smoothing_check(value: Any) -> SmoothingSpec:
    """Any accepted ``postprocess.smoothing`` form (or a SmoothingSpec) → SmoothingSpec; ValueError otherwise."""
    if isinstance(value, SmoothingSpec):
        return value
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return SmoothingSpec("none")
    if isinstance(value, Mapping):  # {mean: 5} or {ema: 0.3}
        if len(value) != 1 or next(iter(value)) not in ("mean", "ema"):
            raise ValueError(f"expected {SMOOTHING_WHAT} or a mapping {{mean: N}} / {{ema: A}}, "
                             f"got a mapping with keys {', '.join(key_text(k) for k in list(value)[:5])}")
        ((kind, amount),) = value.items()
        shown = f"{kind}: {scalar_text(amount)}" if isinstance(amount, str) else f"{kind}:{scalar_text(amount)}"
        if isinstance(amount, str):  # {mean: "5"} is a quoted number, not the shorthand form
            raise ValueError(f"must be {SMOOTHING_WHAT}, got {shown}")
    elif isinstance(value, str):
        match = re.fullmatch(r"(mean|ema)\s*:\s*(\S+)", value.strip().lower())
        kind, amount, shown = (*match.groups(), value) if match else (None, None, value)
    else:
        raise ValueError(f"expected {SMOOTHING_WHAT}, got {describe(value)}")
    if kind == "mean":
        if isinstance(amount, str) and re.fullmatch(r"\+?\d+", amount):
            amount = int(amount)
        if not isinstance(amount, bool) and isinstance(amount, int) and amount >= 1:
            return SmoothingSpec("mean", window=amount)
    elif kind == "ema":
        try:
            alpha = float(amount) if isinstance(amount, str) or _finite(amount) else math.nan
        except ValueError:
            alpha = math.nan
        if math.isfinite(alpha) and 0.0 < alpha <= 1.0:
            return SmoothingSpec("ema", alpha=alpha)
    raise ValueError(f"must be {SMOOTHING_WHAT}, got {scalar_text(shown)}")


Smoothing = _custom(smoothing_check, {"anyOf": [
    {"type": "string", "pattern": r"^\s*([nN][oO][nN][eE]|([mM][eE][aA][nN]|[eE][mM][aA])\s*:\s*\S+)\s*$"},
    {"type": "object", "properties": {"mean": {"type": "integer", "minimum": 1}}, "required": ["mean"],
     "additionalProperties": False},
    {"type": "object", "properties": {"ema": {"type": "number", "exclusiveMinimum": 0, "maximum": 1}},
     "required": ["ema"], "additionalProperties": False},
    {"type": "null"}]}, SmoothingSpec, serialize=str)
