"""The pooled feature of every clip of the videos, by the engine of ``edge-har run``, cached per video.

Extraction is eval's run (``edge.eval.predict.run_model``: the config's first
camera, batch mode, several videos at once) with the model loaded with its
pooled feature as an extra output (``edge.models.head.with_features``): one
inference per clip, the same decode and preprocessing as ``run``, so the clips
are exactly those ``eval`` scores.

Cache: ``<home>/features/<key>.npz`` per video, where the key hashes the
video's bytes, the model files and everything that changes a clip's pixels or
the network's numbers (sampling, preprocessing, gating, inference masks,
device and precision). Adding ten clips to a folder extracts ten clips.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.models.head import FEATURE_DIM
from edge.models.paths import edge_home, file_sha1

FORMAT = 1  # bump when what is stored changes
# Videos per service run. Learning clips are short, so each run's fixed cost (loading and compiling the
# model, starting the lanes) weighs more than in eval: 24 at once measured 0.89-0.96x the bare model's
# clips/s on 2 s H.264 clips, against 0.79-0.83x with eval's 8 (benchmarks/bench_learn.py).
LANES_PER_RUN = 24


@dataclass
class Extraction:
    """Each readable video's clips (``features`` (n, 512) float32, ``start_s``, ``end_s``), what was computed now,
    what came from the cache, and the videos that could not be read (with the reason)."""

    clips: dict[Path, dict] = field(default_factory=dict)
    extracted: list[Path] = field(default_factory=list)
    cached: list[Path] = field(default_factory=list)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    model_sha1: str = ""  # of the model's weights file (the .bin, or the .onnx)


def cache_dir() -> Path:
    return edge_home() / "features"


def model_files(config) -> list[Path]:
    """The files of the configured model (``.xml`` + ``.bin``, or the ``.onnx``)."""
    from edge.models import default_model_path
    from edge.models.loading import resolve_model_path

    path = resolve_model_path(config.model.path or default_model_path())
    return [path, path.with_suffix(".bin")] if path.suffix.lower() == ".xml" else [path]


def fingerprint(config, model_sha1s: list[str]) -> str:
    """What the features depend on besides the video: the model's bytes (``model_sha1s``, of ``model_files``) and
    the clip and inference settings."""
    camera = next(iter(config.cameras.values()))
    privacy = camera.privacy
    settings = {
        "format": FORMAT,
        "model": model_sha1s,
        "labels": str(config.model.labels or ""),
        "sampling": {"clip_len": camera.sampling.clip_len, "frame_step": camera.sampling.frame_step},
        "preprocess": camera.preprocess.model_dump(mode="json"),
        "min_motion": camera.gating.min_motion,
        "masks": privacy.model_dump(mode="json")["masks"] if privacy.mask_inference else [],
        "device": config.inference.device,
        "precision": config.inference.precision,
    }
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def _key(video: Path, model_key: str) -> str:
    return hashlib.sha1(f"{file_sha1(video)}:{model_key}".encode()).hexdigest()


def _load(path: Path) -> dict | None:
    try:
        with np.load(path) as stored:
            got = {name: stored[name] for name in ("features", "start_s", "end_s")}
    except (OSError, ValueError, KeyError):
        return None  # missing or damaged: computed again
    if got["features"].ndim != 2 or got["features"].shape[1:] != (FEATURE_DIM,):
        return None
    return got


def _store(path: Path, got: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    try:
        np.savez(tmp, **got)
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a full disk costs the cache, not the run


def clips_of(records) -> dict:
    """A video's inferred clips from its prediction records (gated clips have no feature)."""
    rows = [record for _, record in records
            if record.get("event", "prediction") == "prediction" and record.get("features") is not None]
    return {"features": np.stack([r["features"] for r in rows]).astype(np.float32) if rows
            else np.zeros((0, FEATURE_DIM), np.float32),
            "start_s": np.array([r["start_time_s"] for r in rows], np.float64),
            "end_s": np.array([r["end_time_s"] for r in rows], np.float64)}


def extract(config, videos, *, progress: bool = False, use_cache: bool = True) -> Extraction:
    """Every video's clip features: from the cache, or through the engine (``ModelError`` as ``run``; a model
    without a pooled feature is a ``ModelError`` naming the node looked for)."""
    from edge.eval.predict import Progress, run_model

    model_sha1s = [file_sha1(path) for path in model_files(config)]
    out = Extraction(model_sha1=model_sha1s[-1])
    model_key = fingerprint(config, model_sha1s)
    keys = {Path(video): _key(Path(video), model_key) for video in videos}
    todo = []
    for video, key in keys.items():
        got = _load(cache_dir() / f"{key}.npz") if use_cache else None
        if got is None:
            todo.append(video)
        else:
            out.clips[video] = got
            out.cached.append(video)
    if todo:
        bar = Progress(todo) if progress else None
        records = run_model(config, todo, batch=True, progress=bar, features=True, lanes_per_run=LANES_PER_RUN,
                            on_unreadable=lambda video, reason: out.unreadable.append((video, reason)))
        for video in todo:
            if video not in records:
                continue
            got = clips_of(records[video])
            out.clips[video] = got
            out.extracted.append(video)
            _store(cache_dir() / f"{keys[video]}.npz", got)
    out.clips = {Path(video): out.clips[Path(video)] for video in videos if Path(video) in out.clips}
    return out
