"""Model metadata kept in OpenVINO ``rt_info`` under the ``edge_har`` key.

It survives ``ov.save_model`` / ``Core.read_model``. Values are stored as
strings (lists as JSON). ONNX files exported by edge-har carry the same keys
as ``metadata_props`` named ``edge_har.<key>``; OpenVINO's ONNX frontend puts
those under ``rt_info["framework"]``, where ``read_metadata`` also looks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import openvino as ov

RT_KEY = "edge_har"
_FIELDS = ("labels", "mean", "clip_len", "size", "untrained", "source", "precision", "custom_labels")


@dataclass(frozen=True)
class ModelMetadata:
    """What edge-har needs to know about a model beyond its graph; ``None`` = unknown."""

    labels: tuple[str, ...] | None = None
    mean: tuple[float, float, float] | None = None
    clip_len: int | None = None
    size: int | None = None
    untrained: bool | None = None
    source: str | None = None
    precision: str | None = None
    custom_labels: tuple[str, ...] | None = None  # the classes of a grafted head (``edge-har learn``)


def metadata_strings(meta: ModelMetadata) -> dict[str, str]:
    """The metadata as flat strings, for rt_info or ONNX ``metadata_props`` (unknown fields left out)."""
    out = {}
    for name in _FIELDS:
        value = getattr(meta, name)
        if value is None:
            continue
        if name in ("labels", "mean", "custom_labels"):
            out[name] = json.dumps(list(value))
        elif name == "untrained":
            out[name] = "true" if value else "false"
        else:
            out[name] = str(value)
    return out


def _parse(strings: dict[str, str]) -> ModelMetadata:
    def get(name, convert):
        return convert(strings[name]) if name in strings else None

    return ModelMetadata(
        labels=get("labels", lambda s: tuple(json.loads(s))),
        mean=get("mean", lambda s: tuple(float(v) for v in json.loads(s))),
        clip_len=get("clip_len", int),
        size=get("size", int),
        untrained=get("untrained", lambda s: s.strip().lower() == "true"),
        source=get("source", str),
        precision=get("precision", str),
        custom_labels=get("custom_labels", lambda s: tuple(json.loads(s))),
    )


def write_metadata(model: ov.Model, meta: ModelMetadata) -> ov.Model:
    """Attach ``meta`` to ``model``'s rt_info (in place); returns the model."""
    for name, value in metadata_strings(meta).items():
        model.set_rt_info(value, [RT_KEY, name])
    return model


def read_metadata(model: ov.Model) -> ModelMetadata:
    """The metadata attached to ``model``; fields never written are ``None``."""
    strings = {}
    for name in _FIELDS:
        for path in ([RT_KEY, name], ["framework", f"{RT_KEY}.{name}"]):
            if model.has_rt_info(path):
                strings[name] = model.get_rt_info(path).astype(str)
                break
    return _parse(strings)
