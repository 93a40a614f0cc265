"""Leaf values of the configuration: their checks, their one-line problems, their JSON Schema.

Each check takes the raw YAML value and returns the normalised one or raises ``Invalid``
with the problem text ("must be an integer ≥ 1, got 0"); ``leaf()`` turns a check into an
``Annotated`` pydantic type whose error carries exactly that text, so the loader can
reword every error into the one-line form without guessing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from edge.urls import URL_SCHEMES, mask_credentials

NAME_PATTERN = r"[a-z0-9_-]{1,32}"
VALUE_ERROR = "edge_value"   # the pydantic error type of every leaf problem


class Invalid(Exception):
    """A value failed its check; carries the problem text, the caller adds origin and key."""


class TextLeaf:
    """Marker in a leaf's metadata: a ``--set`` value for this key stays text (a path, a device, a host)."""

    def __repr__(self) -> str:
        return "TextLeaf()"


TEXT = TextLeaf()


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


# ---------------------------------------------------------------- checks

def _bounds_text(minimum, maximum, exclusive_min=False) -> str:
    if minimum is not None and maximum is not None:
        return f" > {minimum} and ≤ {maximum}" if exclusive_min else f" from {minimum} to {maximum}"
    if minimum is not None:
        return f" > {minimum}" if exclusive_min else f" ≥ {minimum}"
    return ""


def integer_check(minimum: int | None = None, maximum: int | None = None) -> Callable[[Any], int]:
    what = "an integer" + _bounds_text(minimum, maximum)

    def check(value):
        if isinstance(value, bool) or not isinstance(value, int):  # YAML true is not 1
            raise Invalid(f"expected {what}, got {describe(value)}")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise Invalid(f"must be {what}, got {scalar_text(value)}")
        return value

    return check


def to_float(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        hint = ""
        if isinstance(value, str):
            try:
                float(value)
                # PyYAML reads 1e-3 (no dot, unsigned exponent) as text.
                hint = " (write numbers with a dot and a signed exponent, e.g. 1.0e-3)"
            except ValueError:
                pass
        raise Invalid(f"expected {what}, got {describe(value)}{hint}")
    try:
        number = float(value)
    except OverflowError:
        raise Invalid(f"must be {what}, got {scalar_text(value)}") from None
    if not math.isfinite(number):
        raise Invalid(f"must be {what}, got {scalar_text(value)}")
    return number


def number_check(minimum: float | None = None, maximum: float | None = None,
                 exclusive_min: bool = False) -> Callable[[Any], float]:
    what = "a number" + _bounds_text(minimum, maximum, exclusive_min)

    def check(value):
        number = to_float(value, what)
        too_low = minimum is not None and (number <= minimum if exclusive_min else number < minimum)
        if too_low or (maximum is not None and number > maximum):
            raise Invalid(f"must be {what}, got {scalar_text(value)}")
        return number

    return check


def choice_check(*options: str) -> Callable[[Any], str]:
    what = "one of " + ", ".join(repr(option) for option in options)

    def check(value):
        if not isinstance(value, str):
            raise Invalid(f"expected {what}, got {describe(value)}")
        if value.strip().lower() not in options:
            raise Invalid(f"must be {what}, got {scalar_text(value)}")
        return value.strip().lower()

    return check


def flag_check(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"expected true or false, got {describe(value)}")
    return value


def auto_flag_check(value: Any) -> str:
    """auto | true | false (YAML booleans or strings; null means auto) → "auto" | "true" | "false"."""
    if value is None:
        return "auto"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.strip().lower() in ("auto", "true", "false"):
        return value.strip().lower()
    raise Invalid(f"expected 'auto', true or false, got {describe(value)}")


def text_check(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"expected a string, got {describe(value)}")
    if not value.strip() or "\x00" in value:
        raise Invalid(f"must be a non-empty string, got {scalar_text(value)}")
    return value


def optional_text_check(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(f"expected a string or null, got {describe(value)}")
    return text_check(value)


def optional_path_check(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(f"expected a path (a string) or null, got {describe(value)}")
    if not value.strip() or "\x00" in value:
        raise Invalid(f"must be a non-empty path or null, got {scalar_text(value)}")
    return value


def auto_or_integer_check(minimum: int = 1) -> Callable[[Any], int | None]:
    """An integer ≥ minimum, or 'auto' (null too) stored as None."""
    what = f"an integer ≥ {minimum} or 'auto'"

    def check(value):
        if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"expected {what}, got {describe(value)}")
        if value < minimum:
            raise Invalid(f"must be {what}, got {scalar_text(value)}")
        return value

    return check


def mean_check(value: Any) -> tuple[float, float, float] | None:
    what = "a list of 3 numbers (R, G, B) or null"
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise Invalid(f"expected {what}, got {describe(value)}")
    if len(value) != 3:
        raise Invalid(f"must be {what}, got {scalar_text(value)}")
    channels = []
    for position, item in enumerate(value, start=1):
        try:
            channels.append(to_float(item, "a finite number"))
        except Invalid:
            raise Invalid(f"expected {what}, item {position} is {describe(item)}") from None
    return tuple(channels)


def labels_check(value: Any) -> tuple[str, ...]:
    what = "a non-empty list of model labels (strings)"
    if isinstance(value, str):
        raise Invalid(f"expected {what}, got {describe(value)} (write [{value!r}])")
    if not isinstance(value, (list, tuple)):
        raise Invalid(f"expected {what}, got {describe(value)}")
    if not value:
        raise Invalid(f"must be {what}, got an empty list")
    for position, item in enumerate(value, start=1):
        if not isinstance(item, str) or not item.strip():
            raise Invalid(f"expected {what}, item {position} is {describe(item)}")
    return tuple(value)


def name_check(what: str, reserved: tuple[str, ...] = ()) -> Callable[[Any], str]:
    def check(value):
        if not isinstance(value, str):
            raise Invalid(f"expected a {what} name matching {NAME_PATTERN}, got {describe(value)}")
        if not re.fullmatch(NAME_PATTERN, value):
            raise Invalid(f"invalid {what} name {scalar_text(value)}: use 1 to 32 of a-z 0-9 _ -")
        if value in reserved:
            raise Invalid(f"{what} name {value!r} is reserved")
        return value

    return check


def source_check(value: Any) -> str | None:
    what = "a file path, a camera index ≥ 0, a device path or an rtsp:// / http(s):// URL"
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise Invalid(f"expected {what}, got {describe(value)}")
    if isinstance(value, int):
        if value < 0:
            raise Invalid(f"must be {what}, got {scalar_text(value)}")
        return str(value)
    if not value.strip() or "\x00" in value:
        raise Invalid(f"must be {what}, got {scalar_text(value)}")
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", value)
    if scheme and scheme.group(1).lower() not in URL_SCHEMES:
        raise Invalid(f"unsupported URL scheme {scheme.group(1)!r} (use one of "
                      f"{', '.join(s + '://' for s in URL_SCHEMES)}), got {scalar_text(mask_credentials(value))}")
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


def _smoothing_from_parts(kind: str, amount: Any, shown: Any) -> SmoothingSpec:
    if kind == "mean":
        if isinstance(amount, str) and re.fullmatch(r"\+?\d+", amount.strip()):
            amount = int(amount)
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
            raise Invalid(f"must be {SMOOTHING_WHAT}, got {scalar_text(shown)}")
        return SmoothingSpec("mean", window=amount)
    if isinstance(amount, str):
        try:
            amount = float(amount)
        except ValueError:
            raise Invalid(f"must be {SMOOTHING_WHAT}, got {scalar_text(shown)}") from None
    if isinstance(amount, bool) or not isinstance(amount, (int, float)):
        raise Invalid(f"must be {SMOOTHING_WHAT}, got {scalar_text(shown)}")
    try:
        alpha = float(amount)
    except OverflowError:
        alpha = math.inf
    if not (math.isfinite(alpha) and 0.0 < alpha <= 1.0):
        raise Invalid(f"must be {SMOOTHING_WHAT}, got {scalar_text(shown)}")
    return SmoothingSpec("ema", alpha=alpha)


def smoothing_check(value: Any) -> SmoothingSpec:
    if isinstance(value, SmoothingSpec):
        return value
    if value is None:
        return SmoothingSpec("none")
    if isinstance(value, Mapping):  # {mean: 5} or {ema: 0.3}
        if len(value) != 1 or next(iter(value)) not in ("mean", "ema"):
            raise Invalid(f"expected {SMOOTHING_WHAT} or a mapping {{mean: N}} / {{ema: A}}, "
                          f"got a mapping with keys {', '.join(key_text(k) for k in list(value)[:5])}")
        ((kind, amount),) = value.items()
        if isinstance(amount, str):  # {mean: "5"} is a quoted number, not the shorthand form
            raise Invalid(f"must be {SMOOTHING_WHAT}, got {kind}: {scalar_text(amount)}")
        return _smoothing_from_parts(kind, amount, f"{kind}:{scalar_text(amount)}")
    if not isinstance(value, str):
        raise Invalid(f"expected {SMOOTHING_WHAT}, got {describe(value)}")
    text = value.strip().lower()
    if text == "none":
        return SmoothingSpec("none")
    match = re.fullmatch(r"(mean|ema)\s*:\s*(\S+)", text)
    if match is None:
        raise Invalid(f"must be {SMOOTHING_WHAT}, got {scalar_text(value)}")
    return _smoothing_from_parts(match.group(1), match.group(2), value)


# ---------------------------------------------------------------- pydantic types

def leaf(check: Callable[[Any], Any], schema: dict, python_type: Any = Any, *,
         text: bool = False, serialize: Callable[[Any], Any] | None = None) -> Any:
    """An ``Annotated`` pydantic type validated by ``check``, documented by the JSON ``schema``."""

    def validate(value):
        try:
            return check(value)
        except Invalid as problem:
            raise PydanticCustomError(VALUE_ERROR, "{problem}", {"problem": str(problem)}) from None

    metadata: list = [PlainValidator(validate, json_schema_input_type=python_type), WithJsonSchema(schema)]
    if serialize is not None:
        metadata.append(PlainSerializer(serialize))
    if text:
        metadata.append(TEXT)
    return Annotated[(python_type, *metadata)]


def _integer_schema(minimum=None, maximum=None) -> dict:
    schema: dict = {"type": "integer"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def _number_schema(minimum=None, maximum=None, exclusive_min=False) -> dict:
    schema: dict = {"type": "number"}
    if minimum is not None:
        schema["exclusiveMinimum" if exclusive_min else "minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def Integer(minimum: int | None = None, maximum: int | None = None) -> Any:
    return leaf(integer_check(minimum, maximum), _integer_schema(minimum, maximum), int)


def Number(minimum: float | None = None, maximum: float | None = None,
           exclusive_min: bool = False) -> Any:
    return leaf(number_check(minimum, maximum, exclusive_min), _number_schema(minimum, maximum, exclusive_min), float)


def Choice(*options: str) -> Any:
    return leaf(choice_check(*options), {"type": "string", "enum": list(options)}, str)


def AutoOrInteger(minimum: int = 1) -> Any:
    schema = {"anyOf": [{"const": "auto"}, _integer_schema(minimum), {"type": "null"}]}
    return leaf(auto_or_integer_check(minimum), schema, int | None,
                serialize=lambda value: "auto" if value is None else value)


Flag = leaf(flag_check, {"type": "boolean"}, bool)
AutoFlag = leaf(auto_flag_check, {"anyOf": [{"enum": ["auto", "true", "false"]}, {"type": "boolean"},
                                             {"type": "null"}]}, str)
Text = leaf(text_check, {"type": "string", "minLength": 1}, str, text=True)
OptionalText = leaf(optional_text_check, {"type": ["string", "null"]}, str | None, text=True)
OptionalPath = leaf(optional_path_check, {"type": ["string", "null"]}, str | None, text=True)
Mean = leaf(mean_check, {"anyOf": [{"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3},
                                   {"type": "null"}]}, tuple[float, float, float] | None,
            serialize=lambda value: None if value is None else list(value))
Labels = leaf(labels_check, {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
              tuple[str, ...], serialize=list)
Smoothing = leaf(smoothing_check, {"anyOf": [
    {"type": "string", "pattern": r"^\s*([nN][oO][nN][eE]|([mM][eE][aA][nN]|[eE][mM][aA])\s*:\s*\S+)\s*$"},
    {"type": "object", "properties": {"mean": {"type": "integer", "minimum": 1}}, "required": ["mean"],
     "additionalProperties": False},
    {"type": "object", "properties": {"ema": {"type": "number", "exclusiveMinimum": 0, "maximum": 1}},
     "required": ["ema"], "additionalProperties": False},
    {"type": "null"}]}, SmoothingSpec, serialize=str)
Source = leaf(source_check, {"anyOf": [{"type": "string", "minLength": 1}, {"type": "integer", "minimum": 0},
                                       {"type": "null"}]}, str | None, text=True)
CameraName = leaf(name_check("camera"), {"type": "string", "pattern": f"^{NAME_PATTERN}$"}, str)
ActivityName = leaf(name_check("activity", reserved=("none",)),  # "none" is what MQTT says when no activity runs
                    {"type": "string", "pattern": f"^{NAME_PATTERN}$", "not": {"const": "none"}}, str)
