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


def default_model_path(cache_dir=None) -> Path:
    """The fetched real model's IR if present, else the demo IR (seed 0), built and cached on first use."""
    from edge.models.registry import get_entry

    real = models_dir(cache_dir) / REAL_MODEL / Path(get_entry(REAL_MODEL).filename).with_suffix(".xml")
    if real.is_file():
        return real
    demo_dir = models_dir(cache_dir) / DEMO_MODEL
    demo = demo_dir / f"{DEMO_MODEL}.xml"
    if demo.is_file() and demo.with_suffix(".bin").is_file():
        return demo
    from edge.models.demo import save_demo_model

    logging.getLogger(__name__).info("no model fetched: building the untrained demo model in %s (first run only)", demo_dir)
    return save_demo_model(demo_dir, seed=0)


def named_model_path(name: str, cache_dir=None) -> Path | None:
    """The model a manifest name stands for (``edge-har model list``), or None if ``name`` is no such name.

    ``resnet34-kinetics-demo`` is built on first use; a real model must have been fetched:
    ``ModelError`` tells the user how otherwise.
    """
    from edge.models.registry import known_models

    if name not in known_models():
        return None
    if name == DEMO_MODEL:
        demo_dir = models_dir(cache_dir) / DEMO_MODEL
        demo = demo_dir / f"{DEMO_MODEL}.xml"
        if demo.is_file() and demo.with_suffix(".bin").is_file():
            return demo
        from edge.models.demo import save_demo_model

        return save_demo_model(demo_dir, seed=0)
    from edge.models.loading import ModelError
    from edge.models.registry import get_entry

    fetched = models_dir(cache_dir) / name / Path(get_entry(name).filename).with_suffix(".xml")
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
