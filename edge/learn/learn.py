"""``edge-har learn``: from labelled video to a model that also names the site's own activities.

Flow: ``data.read_data`` (eval's layouts) → ``features.extract`` (the engine of
``run``, one inference per clip, cached per video) → ``data.examples_of`` and
``data.split_holdout`` (by file or segment, never by clip) → ``train.fit_head``
on the training part → the hold-out scored as ``eval`` scores labelled clips
(each example's mean probability per class; ``edge.eval.metrics.clip_metrics``)
→ ``export.write_model``: the head grafted onto the network as a second output.

The saved head is the one trained on the training part, so ``edge-har eval``
of the grafted model on the held-out files gives the numbers learn printed.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edge.eval.metrics import ClipExample, clip_metrics
from edge.eval.truth import LabelledClips
from edge.learn import data as data_mod
from edge.learn.data import Example, LearnError
from edge.learn.features import extract
from edge.learn.train import fit_head
from edge.models.head import FEATURE_DIM


def _pre_check(truth, classes: list[str], background: str | None, where: str) -> None:
    """Fail before extraction on what the layout already tells (background runs are known only after)."""
    if isinstance(truth, LabelledClips):
        labels = [name for name, videos in truth.classes.items() for _ in videos]
    else:
        labels = [segment.activity for segment in truth.segments]
        labels += [background] * data_mod.MIN_EXAMPLES if background else []
    data_mod.check_counts(labels, classes, where)


def score_examples(head, features: np.ndarray, examples: list[Example], classes: list[str]) -> list[ClipExample]:
    """Each example's classes ranked by its clips' mean probability (eval's rule for a labelled file)."""
    out = []
    for example in examples:
        probabilities = head.probabilities(features[example.rows]).astype(np.float32)
        mean = probabilities.astype(np.float64).mean(axis=0)
        order = np.argsort(-mean, kind="stable")
        out.append(ClipExample(example.key, example.label, tuple(classes[k] for k in order[:5]),
                               float(mean[order[0]])))
    return out


def holdout_numbers(scored: list[ClipExample], classes: list[str]) -> dict:
    """learn.json's ``holdout``: ``{"n", "accuracy", "per_class": {class: {"n", "precision", "recall"}},
    "confusion"}`` (eval's clip numbers of the same examples)."""
    numbers = clip_metrics(scored, classes)
    return {"n": numbers["n"], "accuracy": numbers["top1"], "per_class": numbers["per_class"],
            "confusion": numbers["confusion"]}


def learn(data, output, config, *, holdout: float | str = 0.2, background: str | None = None,
          force: bool = False, progress: bool = False, seed: int = 0, say=print) -> dict:
    """Learn the classes of ``data`` and write the model to ``output`` (see the module docstring).

    ``holdout``: the share of each class's examples held out, or a folder of held-out data (same layout).
    Returns learn.json's object. Raises ``LearnError`` (one line) for bad input; ``ModelError`` for a model
    without a pooled feature or that cannot be loaded.
    """
    from edge.learn.export import check_output, write_model
    from edge.models import default_model_path, load_model

    output = Path(output)
    check_output(output, force)
    truth = data_mod.read_data(data, background)
    classes = data_mod.classes_of(truth, background)
    _pre_check(truth, classes, background, str(data))
    held_truth = None
    if isinstance(holdout, str):
        held_truth = data_mod.read_data(holdout, background)
        unknown = sorted(set(data_mod.classes_of(held_truth, background)) - set(classes))
        if unknown:
            raise LearnError(f"{holdout}: classes not in {data}: {', '.join(unknown)}")
    elif not 0.0 <= holdout < 1.0:
        raise LearnError(f"--holdout must be a share in [0, 1) or a folder, got {holdout}")
    # Loaded once, now: a model without a pooled feature is said before the long part; the head is grafted on it.
    model, info = load_model(config.model.path or default_model_path(), labels_path=config.model.labels,
                             features=True)

    videos = list(dict.fromkeys([*truth.videos, *(held_truth.videos if held_truth else ())]))
    started = time.monotonic()
    extraction = extract(config, videos, progress=progress)
    extract_s = time.monotonic() - started
    if extraction.unreadable:
        say(f"{len(extraction.unreadable)} of {len(videos)} videos could not be read and are skipped:")
        for video, reason in extraction.unreadable:
            say(f"  {video}: {reason}")
    examples, _ = data_mod.examples_of(truth, extraction.clips, background)
    if held_truth is not None:
        train = examples
        held, _ = data_mod.examples_of(held_truth, extraction.clips, background)
    else:
        train, held = data_mod.split_holdout(examples, float(holdout), seed)
    data_mod.check_counts([example.label for example in train + held], classes, str(data))
    features = np.concatenate([got["features"] for got in extraction.clips.values()]) if extraction.clips \
        else np.zeros((0, FEATURE_DIM), np.float32)
    index = {name: k for k, name in enumerate(classes)}
    train_rows = np.concatenate([example.rows for example in train])
    labels = np.concatenate([np.full(len(example.rows), index[example.label]) for example in train])
    groups = np.concatenate([np.full(len(example.rows), k) for k, example in enumerate(train)])

    started = time.monotonic()
    head = fit_head(features[train_rows], labels, len(classes), groups=groups, seed=seed)
    train_s = time.monotonic() - started
    scored = score_examples(head, features, held, classes)
    numbers = {
        "classes": classes,
        "holdout": holdout_numbers(scored, classes) if held else None,
        "train": {"examples": len(train), "clips": len(train_rows), "l2": head.l2,
                  "cv_accuracy": None if np.isnan(head.cv_accuracy) else head.cv_accuracy,
                  "seconds": round(train_s, 3)},
        "features": {"videos": len(videos), "extracted": len(extraction.extracted),
                     "cached": len(extraction.cached), "unreadable": [str(v) for v, _ in extraction.unreadable],
                     "seconds": round(extract_s, 3)},
        "holdout_examples": [example.key for example in held],
        "data": str(Path(data).resolve()),
        "trained": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
    }
    numbers.update(write_model(output, model, info, extraction.model_sha1, head, classes, numbers))
    return numbers


def summary(numbers: dict) -> str:
    """What the terminal shows after learn."""
    from edge.eval.evaluate import _pct, per_class_lines

    lines = []
    if numbers.get("source_model", {}).get("untrained"):
        lines.append("the features are the untrained demo model's: expect far better with the real model "
                     "(edge-har model fetch)")
    feats, train = numbers["features"], numbers["train"]
    lines.append(f"features: {feats['videos']} videos ({feats['extracted']} extracted, {feats['cached']} from the "
                 f"cache, {len(feats['unreadable'])} unreadable) in {feats['seconds']:.1f} s")
    cv = "-" if train["cv_accuracy"] is None else _pct(train["cv_accuracy"])
    lines.append(f"head: {len(numbers['classes'])} classes, {train['examples']} examples ({train['clips']} clips), "
                 f"L2 {train['l2']:g}, cross-validated accuracy {cv}, {train['seconds']:.2f} s")
    held = numbers.get("holdout")
    if held:
        lines.append(f"hold-out: {held['n']} examples, accuracy {_pct(held['accuracy'])}")
        lines += per_class_lines(held["per_class"])
        lines.append("  confusion (rows: true, columns: predicted):")
        classes = numbers["classes"]
        lines.append("  " + " " * 24 + "".join(f"{name[:10]:>11s}" for name in classes))
        for name in classes:
            row = held["confusion"].get(name, {})
            lines.append(f"  {name[:24]:24s}" + "".join(f"{row.get(other, 0):11d}" for other in classes))
    else:
        lines.append("hold-out: none (--holdout 0)")
    lines.append(f"model written to {numbers['output']}")
    return "\n".join(lines)

