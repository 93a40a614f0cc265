"""The manifest of known models (``models/manifest.yaml``, installed as ``edge.bundled``) and the bundled labels."""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass, field
from functools import lru_cache

import yaml

from edge.models.errors import ModelError

KINETICS_LABELS = "kinetics400_labels.txt"


@dataclass(frozen=True)
class ModelEntry:
    """One manifest entry: where the model comes from and what input it expects."""

    name: str
    description: str
    format: str
    filename: str
    clip_len: int
    size: int
    mean: tuple[float, float, float]
    scale: float
    colour: str
    layout: str
    num_classes: int
    labels: str
    untrained: bool
    url: str | None = None
    sha1: str | None = None
    weights: dict = field(default_factory=dict, compare=False)


@lru_cache(maxsize=1)
def load_manifest() -> dict[str, ModelEntry]:
    """Read the bundled manifest: model name -> ``ModelEntry``."""
    text = importlib.resources.files("edge.bundled").joinpath("manifest.yaml").read_text(encoding="utf-8")
    entries = {}
    for name, raw in (yaml.safe_load(text) or {}).get("models", {}).items():
        spec = raw["input"]
        entries[name] = ModelEntry(
            name=name,
            description=raw.get("description", ""),
            format=raw["format"],
            filename=raw["filename"],
            clip_len=int(spec["clip_len"]),
            size=int(spec["size"]),
            mean=tuple(float(m) for m in spec["mean"]),
            scale=float(spec.get("scale", 1.0)),
            colour=spec.get("colour", "RGB"),
            layout=spec.get("layout", "NCTHW"),
            num_classes=int(raw["num_classes"]),
            labels=raw["labels"],
            untrained=bool(raw.get("untrained", False)),
            url=raw.get("url"),
            sha1=raw.get("sha1"),
            weights=dict(raw.get("weights", {})),
        )
    return entries


def known_models() -> list[str]:
    """Names of the models in the manifest."""
    return sorted(load_manifest())


def get_entry(name: str) -> ModelEntry:
    """The manifest entry for ``name``; ``ModelError`` naming the known models if there is none."""
    entries = load_manifest()
    if name not in entries:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(sorted(entries))}")
    return entries[name]


def read_labels(path) -> tuple[str, ...]:
    """Labels from a text file, one per line (blank lines ignored)."""
    with open(path, encoding="utf-8") as handle:
        return tuple(line.strip() for line in handle if line.strip())


@lru_cache(maxsize=4)
def bundled_labels(filename: str = KINETICS_LABELS) -> tuple[str, ...]:
    """The labels shipped in the package (default: the 400 Kinetics classes in model order)."""
    text = importlib.resources.files("edge.bundled").joinpath(filename).read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())
