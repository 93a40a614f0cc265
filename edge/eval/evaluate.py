"""``evaluate``: the truth, the predictions, and the numbers that compare them (the JSON of ``--json``).

Flow: ``truth.read_truth`` → ``predict.run_model`` (or ``predict.read_events``)
→ per layout: clips (mean probability per file → ranked classes →
``metrics.clip_metrics``), or annotated videos (each video's lines through
``edge.replay`` with the eval config → activity segments and checks →
``metrics.segment_metrics`` / ``metrics.check_metrics``; ``--sweep``:
``sweep.sweep``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.eval import metrics, predict
from edge.eval.metrics import ClipExample, PredictedCheck
from edge.eval.truth import Annotations, EvalError, LabelledClips, read_truth
from edge.records import CUSTOM_PREFIX


@dataclass
class Evaluation:
    """What eval found: ``numbers`` (the ``--json`` object) and what the report draws."""

    numbers: dict
    truth: LabelledClips | Annotations
    records: dict[Path, list] = field(repr=False)
    examples: list[ClipExample] = field(default_factory=list)
    segments: dict[tuple[str, str], list[tuple[float, float]]] = field(default_factory=dict)
    checks: list[PredictedCheck] = field(default_factory=list)
    tracks: dict | None = field(default=None, repr=False)
    activities: tuple[str, ...] = ()
    gap_s: dict[str, float] = field(default_factory=dict)
    min_score: dict[str, float] = field(default_factory=dict)


def evaluate(data, config, *, events: Sequence[str] | None = None, sweep: bool = False, tolerance_s: float = 5.0,
             progress: bool = False) -> Evaluation:
    """Compare ``config``'s predictions on ``data`` with its truth (``edge.eval.truth`` for the layouts).

    ``events``: events files (files, folders, globs) to read instead of running the model. ``sweep``:
    add the ``min_score`` × ``gap_s`` grid. ``progress``: a progress bar on stderr. Raises ``EvalError``
    (one line) for bad input; ``ConfigError``/``ModelError`` as ``edge-har run``.
    """
    from edge.replay import ReplayError, model_labels

    try:
        labels = model_labels(config)
    except ReplayError as error:
        raise EvalError(str(error)) from None
    template = next(iter(config.cameras.values()))
    activities = dict(template.activities)
    rules = [rule.name for rule in config.rules]
    custom = [label[len(CUSTOM_PREFIX):] for label in labels if label.startswith(CUSTOM_PREFIX)]
    truth = read_truth(data, labels=[*labels, *custom], activities=activities, rules=rules)
    videos = list(truth.videos)
    clips = isinstance(truth, LabelledClips)
    if events:
        records = predict.read_events(events, videos, need_scores=clips)
    else:
        bar = predict.Progress(videos) if progress else None
        records = predict.run_model(config, videos, batch=clips, progress=bar)
    result = Evaluation({"model": _model(records)}, truth, records, activities=tuple(activities),
                        gap_s={name: float(spec.gap_s) for name, spec in activities.items()},
                        min_score={name: float(spec.min_score) for name, spec in activities.items()})
    if clips:
        result.examples = clip_examples(truth, records, labels, activities)
        if _class_space(truth, labels, activities)[0]:
            result.numbers["model"]["head"] = "custom"
        result.numbers["clips"] = metrics.clip_metrics(result.examples, truth.classes)
        return result
    _judge(result, config, labels, activities, rules, tolerance_s)
    if sweep:
        from edge.eval.sweep import sweep as run_sweep

        result.numbers["sweep"] = run_sweep(_tracks(result, activities, labels),
                                            metrics.truth_by_activity(truth.segments))
        if truth.checks is not None:
            result.numbers["sweep_checks"] = _checks_at_best(result, config, rules, tolerance_s)
    return result


def _tracks(result: Evaluation, activities, labels):
    if result.tracks is None:
        from edge.eval.sweep import tracks

        result.tracks = tracks({str(video): lines for video, lines in result.records.items()}, activities, labels,
                               "media")
    return result.tracks


def pr_curve(result: Evaluation, labels=None, threshold: float = 0.5) -> dict[str, list[dict]]:
    """activity -> [{"min_score", "precision", "recall", "f1"}] at its configured ``gap_s`` (the report's curve)."""
    from edge.eval.sweep import MIN_SCORES, sweep

    if result.tracks is None:
        return {}
    truth = metrics.truth_by_activity(result.truth.segments)
    out = {}
    for activity in result.activities:
        grid = sweep({activity: result.tracks[activity]}, truth, MIN_SCORES, (result.gap_s[activity],),
                     threshold)[activity]["grid"]
        out[activity] = grid
    return out


def _judge(result: Evaluation, config, labels, activities, rules, tolerance_s: float) -> None:
    """Annotated videos: replay each video's lines with the eval config; segments and checks against the truth."""
    truth: Annotations = result.truth
    result.segments, result.checks = _replayed(result, config)
    result.numbers["segments"] = metrics.segment_metrics(truth.segments, result.segments, activities)
    if truth.checks is not None:
        result.numbers["checks"] = metrics.check_metrics(truth.checks, result.checks, rules, tolerance_s)
    try:
        _tracks(result, activities, labels)
    except EvalError:
        result.tracks = None  # top_k lines that cannot be swept: no curve in the report


def _replayed(result: Evaluation, config) -> tuple[dict, list[PredictedCheck]]:
    """Each video's lines through ``edge.replay`` with ``config`` made the eval config: (segments, checks)."""
    from edge.events import ActivityEvent, CheckEvent
    from edge.replay import ReplayError, replay_records

    names = predict.camera_names(list(result.truth.videos))
    eval_config = predict.eval_config(config, names)
    segments: dict[tuple[str, str], list[tuple[float, float]]] = {}
    checks: list[PredictedCheck] = []
    for name, video in names.items():
        lines = [(where, {**record, "camera": name}) for where, record in result.records[video]]
        try:
            for event in replay_records(lines, eval_config, camera=name):
                if isinstance(event, ActivityEvent) and event.type == "end":
                    segments.setdefault((str(video), event.activity), []).append(
                        (event.start_time_s, event.end_time_s))
                elif isinstance(event, CheckEvent):
                    checks.append(PredictedCheck(str(video), event.rule, float(event.time_s), event.passed))
        except ReplayError as error:
            raise EvalError(str(error)) from None
    return segments, checks


def _checks_at_best(result: Evaluation, config, rules, tolerance_s: float) -> dict:
    """The checks with every activity at its sweep's best ``min_score`` and ``gap_s`` (replayed)."""
    template = next(iter(config.cameras.values()))
    tuned = {}
    for name, spec in template.activities.items():
        best = result.numbers["sweep"].get(name, {}).get("best")
        tuned[name] = spec if best is None else spec.model_copy(
            update={"min_score": best["min_score"], "gap_s": best["gap_s"]})
    camera = template.model_copy(update={"activities": tuned})
    _, checks = _replayed(result, config.model_copy(update={"cameras": {template.name: camera}}))
    return metrics.check_metrics(result.truth.checks, checks, rules, tolerance_s)


def _class_space(truth: LabelledClips, labels: Sequence[str], activities: Mapping[str, object]):
    """(whether the classes are a learned head's, [(class name, columns of the scores row), ...])."""
    index = {label: number for number, label in enumerate(labels)}
    custom = [label for label in labels if label.startswith(CUSTOM_PREFIX)]

    def is_custom(name: str) -> bool:
        if name in activities:
            return all(label.startswith(CUSTOM_PREFIX) for label in activities[name].labels)
        return CUSTOM_PREFIX + name in index or name in custom

    use_custom = bool(custom) and all(is_custom(name) for name in truth.classes)
    head = custom if use_custom else [label for label in labels if not label.startswith(CUSTOM_PREFIX)]
    grouped = [name for name in truth.classes if name in activities]
    covered = {label for name in grouped for label in activities[name].labels}
    space = [(name, [index[label] for label in activities[name].labels]) for name in grouped]
    space += [(label[len(CUSTOM_PREFIX):] if use_custom else label, [index[label]])
              for label in head if label not in covered]
    return use_custom, space


def clip_examples(truth: LabelledClips, records: Mapping[Path, list], labels: Sequence[str],
                  activities: Mapping[str, object]) -> list[ClipExample]:
    """Each file's classes ranked by its mean probability (a class that is an activity scores its labels' sum).

    The classes ranked: the activities named by class folders, and every model label not in one of them;
    when every class folder is a class of the model's learned head (``edge-har learn``; NAME or
    ``custom:NAME``), the head's classes instead, ranked by the lines' ``custom_scores``. A file whose
    clips were all gated (a still scene) is predicted ``none``.
    """
    use_custom, space = _class_space(truth, labels, activities)
    out = []
    for name, videos in truth.classes.items():
        for video in videos:
            rows = [record["scores"] + (record.get("custom_scores") or []) for _, record in records[video]
                    if record.get("event", "prediction") == "prediction" and not record.get("gated")
                    and isinstance(record.get("scores"), list)
                    and (not use_custom or isinstance(record.get("custom_scores"), list))]
            if not rows:
                out.append(ClipExample(str(video), name, ("none",), 0.0))
                continue
            mean = np.asarray(rows, dtype=np.float32).astype(np.float64).mean(axis=0)
            scores = np.array([mean[columns].sum() for _, columns in space])
            order = np.argsort(-scores, kind="stable")
            out.append(ClipExample(str(video), name, tuple(space[k][0] for k in order[:5]), float(scores[order[0]])))
    return out


def _model(records) -> dict:
    """The model the predictions came from (their lines' ``model`` and ``untrained``)."""
    for lines in records.values():
        for _, record in lines:
            if record.get("event", "prediction") == "prediction" and "model" in record:
                return {"name": record["model"], "untrained": bool(record.get("untrained"))}
    return {"name": None, "untrained": False}


UNTRAINED_NOTE = ("untrained demo model: these numbers are chance, not a measure of edge-har "
                  "(fetch the real model: edge-har model fetch)")


CUSTOM_UNTRAINED_NOTE = ("the learned head stands on the untrained demo model's features: the real model's "
                         "features do far better (edge-har model fetch)")


def per_class_lines(per_class: Mapping[str, Mapping]) -> list[str]:
    """The per-class rows (n, precision, recall) of eval's and learn's tables."""
    lines = [f"  {'class':24s} {'n':>5s} {'precision':>10s} {'recall':>8s}"]
    for name, row in per_class.items():
        lines.append(f"  {name[:24]:24s} {row['n']:5d} {_pct(row['precision']):>10s} {_pct(row['recall']):>8s}")
    return lines


def summary_table(numbers: Mapping) -> str:
    """The short table the terminal shows."""
    model = numbers.get("model", {})
    lines = [(CUSTOM_UNTRAINED_NOTE if model.get("head") == "custom" else UNTRAINED_NOTE)] \
        if model.get("untrained") else []
    clips = numbers.get("clips")
    if clips:
        lines.append(f"clips: {clips['n']}  top-1 {_pct(clips['top1'])}  top-5 {_pct(clips['top5'])}")
        lines += per_class_lines(clips["per_class"])
    segments = numbers.get("segments")
    if segments:
        lines.append("segments, matched at each temporal IoU:")
        lines.append(f"  {'tIoU':>5s}  {'activity':20s} {'tp':>4s} {'fp':>4s} {'fn':>4s} {'precision':>10s} "
                     f"{'recall':>8s} {'f1':>7s}")
        for threshold, section in segments.items():
            for name, row in section.items():
                lines.append(f"  {threshold:>5s}  {name[:20]:20s} {row['tp']:4d} {row['fp']:4d} {row['fn']:4d} "
                             f"{_pct(row['precision']):>10s} {_pct(row['recall']):>8s} {_pct(row['f1']):>7s}")
    checks = numbers.get("checks")
    if checks:
        lines.append("checks (a failed check is the positive):")
        lines.append(f"  {'rule':20s} {'tp':>4s} {'fp':>4s} {'fn':>4s} {'tn':>4s} {'sensitivity':>12s} "
                     f"{'specificity':>12s} {'delay':>8s}")
        for name, row in checks.items():
            delay = "-" if row["mean_delay_s"] is None else f"{row['mean_delay_s']:.1f} s"
            lines.append(f"  {name[:20]:20s} {row['tp']:4d} {row['fp']:4d} {row['fn']:4d} {row['tn']:4d} "
                         f"{_pct(row['sensitivity']):>12s} {_pct(row['specificity']):>12s} {delay:>8s}")
    sweep = numbers.get("sweep")
    if sweep:
        lines.append("sweep (best F1 at tIoU 0.5):")
        for name, entry in sweep.items():
            best = entry["best"]
            lines.append(f"  {name:24s} " + ("-" if best is None else
                         f"min_score {best['min_score']:g}  gap_s {best['gap_s']:g}  f1 {_pct(best['f1'])}"))
    return "\n".join(lines)


def _pct(value) -> str:
    return "-" if value is None else f"{value:.0%}" if value in (0, 1) else f"{100 * value:.1f}%"
