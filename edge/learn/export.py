"""The folder ``edge-har learn`` writes: the network with the site's head grafted on, its classes, learn.json.

``DIR/model.xml`` (+ ``.bin``, f32): the original network, its Kinetics output
unchanged, plus ``custom_logits`` = the head on the pooled feature (the feature
standardisation folded into the weights; ``edge.models.head.graft_head``). Its
metadata keeps the source's (labels, mean, untrained) and adds
``custom_labels``. ``DIR/labels_custom.txt``: the classes, one per line.
``DIR/learn.json``: the classes, the hold-out numbers, and how the head was
made (source model and its SHA-1, the feature normalisation, L2, date).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np

from edge.learn.data import LearnError

MODEL_FILE = "model.xml"
LEARN_JSON = "learn.json"


def check_output(output: Path, force: bool) -> None:
    """``LearnError`` when ``output`` exists (and is not empty) unless ``force``."""
    if output.exists() and not force and (not output.is_dir() or any(output.iterdir())):
        raise LearnError(f"{output} already exists; pass --force to replace it")
    if output.exists() and not output.is_dir():
        raise LearnError(f"{output} is a file, not a folder")


def write_model(output: Path, model, info, source_sha1: str, head, classes: list[str], numbers: dict) -> dict:
    """Graft ``head`` onto ``model`` (as ``load_model`` gave it, ``info``; its weights file's SHA-1) and write the
    folder (replacing it whole); returns what learn.json adds: ``output``, ``source_model``, ``normalisation``,
    ``head``."""
    from edge.models.demo import save_model_atomic
    from edge.models.head import graft_head
    from edge.models.loading import CUSTOM_LABELS_FILE
    from edge.models.metadata import read_metadata, write_metadata

    weight, bias = head.folded()
    grafted = graft_head(model, weight, bias, info.path)
    write_metadata(grafted, replace(read_metadata(model), labels=info.labels, custom_labels=tuple(classes),
                                    mean=info.mean, clip_len=info.clip_len, size=info.size))
    added = {
        "output": str(output),
        "source_model": {"path": info.path, "sha1": source_sha1,
                         "untrained": info.untrained, "source": info.source},
        "normalisation": {"mean": np.asarray(head.mean, float).round(7).tolist(),
                          "std": np.asarray(head.std, float).round(7).tolist()},
        "head": {"weight": np.asarray(head.weight, float).round(7).tolist(),
                 "bias": np.asarray(head.bias, float).round(7).tolist()},
    }
    tmp = output.with_name(f".{output.name}.learn-tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        save_model_atomic(grafted, tmp / MODEL_FILE)
        (tmp / CUSTOM_LABELS_FILE).write_text("".join(f"{name}\n" for name in classes), encoding="utf-8")
        with open(tmp / LEARN_JSON, "w", encoding="utf-8") as handle:
            json.dump({**numbers, **added}, handle, indent=1)
            handle.write("\n")
        if output.exists():
            shutil.rmtree(output)
        tmp.replace(output)
    except OSError as error:
        shutil.rmtree(tmp, ignore_errors=True)
        raise LearnError(f"cannot write {output}: {error.strerror or error}") from None
    return added
