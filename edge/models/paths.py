"""Where models live on disk: the per-user cache and the default model.

``$EDGE_HAR_HOME`` (default ``~/.cache/edge-har``) holds ``models/<name>/``
(fetched and built models), ``converted/`` (ONNX converted to IR, keyed by
content hash) and ``compiled/`` (OpenVINO's compiled-model cache).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from edge.models.demo import save_demo_model
from edge.models.errors import ModelError
from edge.models.registry import get_entry, known_models

REAL_MODEL = "resnet34-kinetics"
DEMO_MODEL = "resnet34-kinetics-demo"


def edge_home() -> Path:
    """The edge-har cache root: ``$EDGE_HAR_HOME`` or ``~/.cache/edge-har`` (not created)."""
    env = os.environ.get("EDGE_HAR_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "edge-har"


def models_dir(cache_dir=None) -> Path:
    """Directory of fetched and built models (``<home>/models``)."""
    return (Path(cache_dir) if cache_dir else edge_home()) / "models"


def converted_dir(cache_dir=None) -> Path:
    """Directory of ONNX models converted to IR, one subdirectory per content hash."""
    return (Path(cache_dir) if cache_dir else edge_home()) / "converted"


def compiled_cache_dir(cache_dir=None) -> Path:
    """Directory for OpenVINO's compiled-model cache (``CACHE_DIR``)."""
    return (Path(cache_dir) if cache_dir else edge_home()) / "compiled"


def fetched_model_file(name: str = REAL_MODEL, cache_dir=None) -> Path:
    """Where ``edge-har model fetch NAME`` leaves the model's IR (it may not be there yet)."""
    return models_dir(cache_dir) / name / Path(get_entry(name).filename).with_suffix(".xml")


def demo_model_file(cache_dir=None) -> Path:
    """Where the demo IR (seed 0) is built on first use (it may not be there yet)."""
    return models_dir(cache_dir) / DEMO_MODEL / f"{DEMO_MODEL}.xml"


def is_built(xml: Path) -> bool:
    return xml.is_file() and xml.with_suffix(".bin").is_file()


def demo_model_path(cache_dir=None) -> Path:
    """The demo IR (seed 0), built and cached on first use."""
    demo = demo_model_file(cache_dir)
    if is_built(demo):
        return demo
    logging.getLogger(__name__).info("no model fetched: building the untrained demo model in %s (first run only)",
                                     demo.parent)
    return save_demo_model(demo.parent, seed=0)


def default_model_path(cache_dir=None) -> Path:
    """The fetched real model's IR if present, else the demo IR (seed 0), built and cached on first use."""
    real = fetched_model_file(REAL_MODEL, cache_dir)
    return real if real.is_file() else demo_model_path(cache_dir)


def named_model_path(name: str, cache_dir=None) -> Path | None:
    """The model a manifest name stands for (``edge-har model list``), or None if ``name`` is no such name.

    ``resnet34-kinetics-demo`` is built on first use; a real model must have been fetched:
    ``ModelError`` tells the user how otherwise.
    """
    if name not in known_models():
        return None
    if name == DEMO_MODEL:
        return demo_model_path(cache_dir)
    fetched = fetched_model_file(name, cache_dir)
    if not fetched.is_file():
        raise ModelError(f"model {name} is not fetched yet: run `edge-har model fetch {name}`")
    return fetched


def file_sha1(path: Path) -> str:
    """Hex SHA-1 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
