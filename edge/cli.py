"""The ``edge-har`` command line: parses arguments and calls the library, nothing else.

Exit status: 0 done; 2 a user mistake (a bad config key, a missing video, a
model of the wrong shape), reported as one line on stderr; 3 a camera failed
(it could not be opened, or its stream dropped and every reconnection attempt
failed; what was produced is kept); ``run`` interrupted: 128 + the signal
number (130 for SIGINT, 143 for SIGTERM); ``serve`` stopped by a signal: 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from edge import __version__

EXIT_USER_ERROR = 2

RUN_EPILOG = """\
exit status: 0 done, 2 bad input (one line on stderr), 3 a camera failed (could not
be opened, or its stream was lost after every reconnection attempt), 130/143 stopped
by SIGINT/SIGTERM (outputs finalised).

With no arguments, `edge-har run` classifies the bundled sample clip with the
real model if one was fetched (`edge-har model fetch`), else with an untrained
demo model, and writes annotated.mp4, events.jsonl and summary.json into
./edge-har-out/.

examples:
  edge-har run --source kitchen.mp4 --events events.jsonl
  edge-har run -c edge-har.yaml --set sampling.mode=rolling --set sampling.stride=4
  edge-har run --source rtsp://user:pass@10.0.0.5/stream --set output.display=true
"""


SERVE_EPILOG = """\
exit status: 0 stopped by SIGINT/SIGTERM with every camera healthy (outputs
finalised), 2 bad input (one line on stderr), 3 a camera failed (could not be
opened, or its stream was lost after every reconnection attempt).

Every camera writes its own outputs: put {camera} in output paths. One status
line per camera every output.log_every_s seconds.

examples:
  edge-har serve -c /etc/edge-har/edge-har.yaml
  SINK_PASSWORD=... edge-har serve -c edge-har.yaml --set cameras.sink.sampling.stride=4
"""


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception classes that mean 'the user gave us something wrong', not 'edge-har is broken'."""
    from edge.config import ConfigError
    from edge.models.errors import ModelError
    from edge.sinks import SinkError
    from edge.sources import SourceError

    return (ConfigError, ModelError, SinkError, SourceError)


def _add_config_arguments(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument("-c", "--config", metavar="CONFIG", required=required,
                        help="YAML configuration file (see edge-har.example.yaml)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key by its dotted path, e.g. --set sampling.mode=rolling (repeatable; applied last)",
    )


class CommandParser(argparse.ArgumentParser):
    """A parser of ``edge-har`` or of one of its (sub-)commands: each takes the global options.

    So ``edge-har run -q`` means ``edge-har -q run``. A sub-command's own parser leaves the
    options out of the namespace unless they are given after it (``argparse.SUPPRESS``), so
    it never overwrites one given before it; the top-level parser sets their defaults.
    ``add_subparsers`` makes every sub-command's parser of this class too.
    """

    def __init__(self, *args, global_defaults=argparse.SUPPRESS, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument("--version", action="version", version=f"edge-har {__version__}")
        self.add_argument("-v", "--verbose", action="store_true", default=global_defaults, help="log debug messages")
        self.add_argument("-q", "--quiet", action="store_true", default=global_defaults,
                          help="log warnings and errors only")


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="edge-har",
        description="Human activity recognition on video: a Kinetics-400 3D ResNet-34 compiled by OpenVINO "
        "names the action in a camera, stream or file.",
        global_defaults=False,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="classify a video, camera or stream (the main job)",
        description="Classify the actions in a video file, camera or network stream.",
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_config_arguments(run)
    run.add_argument("--source", help="video file, camera index (0) or device path, or rtsp:// / http(s):// URL")
    run.add_argument("--model", help="model: .xml (OpenVINO IR), .onnx, or a directory holding one")
    run.add_argument("--output-video", metavar="PATH", help="write the annotated video here (.mp4)")
    run.add_argument("--events", metavar="PATH", help="append one JSON line per prediction here")
    run.add_argument("--summary", metavar="PATH", help="write the run summary (JSON) here")
    run.add_argument("--display", action="store_true", help="show the annotated video in a window (a key press quits)")

    serve = commands.add_parser(
        "serve",
        help="run every configured camera on one model until SIGINT/SIGTERM (the service)",
        description="Run every camera of the configuration on one shared model until SIGINT/SIGTERM, "
        "then finalise every output. Files end on their own; live cameras reconnect.",
        epilog=SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_config_arguments(serve, required=True)

    config = commands.add_parser("config", help="show or check a configuration, or print its JSON Schema")
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = config_commands.add_parser(
        "show", help="print what will run as YAML: every camera, sources and model resolved, credentials masked")
    _add_config_arguments(show)
    validate = config_commands.add_parser(
        "validate", help="check a configuration file (activity labels against the model's labels); exit 0 when valid")
    validate.add_argument("path", metavar="CONFIG", help="YAML configuration file")
    validate.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                          help="override one config key by its dotted path (repeatable; applied last)")
    config_commands.add_parser(
        "schema", help="print the JSON Schema of the configuration file (for editors: "
                       "`edge-har config schema > edge-har.schema.json`)")

    info = commands.add_parser("info", help="versions, devices and CPU features, for a bug report")
    info.add_argument("--json", action="store_true", help="print one JSON object")

    model = commands.add_parser("model", help="build, fetch, convert, quantise and describe models")
    model_commands = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    demo = model_commands.add_parser(
        "demo", help="build the untrained demo model (exact architecture, seeded random weights) as OpenVINO IR"
    )
    demo.add_argument("--output", required=True, metavar="DIR", help="directory for the .xml/.bin")
    demo.add_argument("--seed", type=int, default=0, help="weights seed (default 0); the same seed gives the same weights")
    fetch = model_commands.add_parser("fetch", help="download a known model, verify its SHA-1 and convert it to IR")
    fetch.add_argument("name", nargs="?", default="resnet34-kinetics", help="manifest name (default resnet34-kinetics)")
    fetch.add_argument("--output", metavar="DIR", help="where to put it (default: the per-user cache, $EDGE_HAR_HOME)")
    convert = model_commands.add_parser("convert", help="convert an ONNX file or a kenshohara .pth checkpoint to IR")
    convert.add_argument("src", metavar="SRC", help="resnet-34_kinetics.onnx (OpenCV) or resnet-34-kinetics.pth (kenshohara)")
    convert.add_argument("--output", required=True, metavar="DIR", help="directory for the .xml/.bin")
    convert.add_argument("--fp16", action=argparse.BooleanOptionalAction, default=False, help="store weights as FP16 (default: no)")
    quantize = model_commands.add_parser("quantize", help="post-training INT8 quantisation with NNCF (extra: quantize)")
    quantize.add_argument("model", metavar="MODEL", help="model: .xml (OpenVINO IR), .onnx, or a directory holding one")
    quantize.add_argument("--calibration", nargs="+", required=True, metavar="VIDEO_OR_DIR", help="videos (or folders of videos) to calibrate on")
    quantize.add_argument("--output", required=True, metavar="DIR", help="directory for the INT8 .xml/.bin")
    quantize.add_argument("--subset", type=int, metavar="N", help="at most N calibration clips")
    model_info = model_commands.add_parser("info", help="inputs, outputs, parameters, precision, labels, untrained or not")
    model_info.add_argument("model", metavar="MODEL", help="model: .xml (OpenVINO IR), .onnx, or a directory holding one")
    model_info.add_argument("--json", action="store_true", help="print one JSON object")
    model_commands.add_parser("list", help="the models the manifest knows")
    _add_replay_report_parsers(commands)
    _add_eval_parser(commands)
    _add_learn_parser(commands)
    return parser


LEARN_EPILOG = """\
DATA is laid out as for eval: a folder of class folders (DATA/<class>/*.mp4, any class
names, at least 5 files each), or a folder holding annotations.csv
(video,start_s,end_s,activity) where every clip inside a segment is an example.

DIR then holds model.xml (the network with the new head as a second output),
labels_custom.txt and learn.json (classes, hold-out accuracy, per-class precision
and recall, confusion). Use it with model.path: DIR; activities name the new
classes as labels: ["custom:NAME"]. Measure it with: edge-har eval HELD_OUT/ --model DIR

exit status: 0 done, 2 bad input (one line on stderr).

examples:
  edge-har learn clips/ --output models/site
  edge-har learn day/ --output models/site --background idle -c edge-har.yaml
  edge-har learn clips/ --output models/site --holdout held-out/ --force
"""


def _add_learn_parser(commands) -> None:
    learn = commands.add_parser(
        "learn",
        help="teach the model the site's own activities from labelled video (a linear head, CPU, seconds)",
        description="Extract the model's pooled feature of every clip (the engine of `edge-har run`, cached per "
        "video), train a logistic-regression head on them, and write the network with the head grafted on.",
        epilog=LEARN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    learn.add_argument("data", metavar="DATA", help="labelled clips (DATA/<class>/*.mp4) or annotated videos "
                       "(DATA/annotations.csv)")
    learn.add_argument("--output", required=True, metavar="DIR", help="the folder to write the model to")
    _add_config_arguments(learn)
    learn.add_argument("--model", help="the model to extend: .xml, .onnx, a directory or a name (default: the "
                       "config's model)")
    learn.add_argument("--holdout", default="0.2", metavar="SHARE_OR_DIR",
                       help="share of each class's examples held out to measure the head (default 0.2; 0 = "
                       "none), or a folder of held-out data in the same layout")
    learn.add_argument("--background", metavar="CLASS", help="a class for clips of nothing in particular: the "
                       "folder DATA/CLASS, or with annotations.csv the clips outside every segment")
    learn.add_argument("--force", action="store_true", help="replace DIR if it exists")
    learn.add_argument("--json", metavar="OUT", help="also write learn.json's object here")


EVAL_EPILOG = """\
DATA is either a folder of class folders (DATA/<class>/*.mp4, a class being a model
label or an activity of the config), or a folder holding annotations.csv
(video,start_s,end_s,activity) and optionally checks.csv (video,rule,time_s,passed).

exit status: 0 done, 2 bad input (one line on stderr naming the file and line).

examples:
  edge-har eval clips/ --model resnet34.xml --json eval.json
  edge-har eval day/ -c edge-har.yaml --report eval-report/ --sweep
  edge-har eval day/ -c edge-har.yaml --events 'logs/events-*.jsonl'
"""


def _add_eval_parser(commands) -> None:
    evaluate = commands.add_parser(
        "eval",
        help="measure accuracy on labelled video (clips, activity segments, checks) and find the thresholds",
        description="Run the same engine as `edge-har run` over labelled video and compare with the truth.",
        epilog=EVAL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate.add_argument("data", metavar="DATA", help="labelled clips (DATA/<class>/*.mp4) or annotated videos "
                          "(DATA/annotations.csv [+ checks.csv])")
    _add_config_arguments(evaluate)
    evaluate.add_argument("--model", help="model: .xml (OpenVINO IR), .onnx, or a directory holding one")
    evaluate.add_argument("--json", metavar="OUT", help="write the numbers as JSON here")
    evaluate.add_argument("--report", metavar="DIR", help="write index.html and PNGs here (extra: report)")
    evaluate.add_argument("--events", nargs="+", metavar="EVENTS",
                          help="read recorded events files (files, folders or globs; with scores) instead of "
                          "running the model")
    evaluate.add_argument("--sweep", action="store_true",
                          help="find the best min_score and gap_s per activity (F1 at tIoU 0.5), without inference")
    evaluate.add_argument("--check-tolerance-s", type=float, default=5.0, metavar="S",
                          help="a predicted check matches an expected one this close in time (default 5)")


def _add_replay_report_parsers(commands) -> None:
    replay = commands.add_parser(
        "replay",
        help="re-run activities and checks on a recorded events.jsonl (tune thresholds without video)",
        description="Re-run the config's activities and rules on the prediction lines of an events.jsonl and "
        "print the activity and check events as JSON lines, as the live run wrote them (apart from wall_time).",
    )
    replay.add_argument("events", nargs="+", metavar="EVENTS",
                        help="events files written by `edge-har run` or `serve`, folders of them, or globs "
                        "(quoted: 'logs/*.jsonl'); a day's rotated files are read in time order, and cameras' "
                        "files are merged (give every camera a rule spans)")
    replay.add_argument("-c", "--config", required=True, metavar="CONFIG",
                        help="YAML configuration with the activities and rules to apply")
    replay.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config key by its dotted path (repeatable)")
    replay.add_argument("--camera", metavar="NAME", help="replay only this camera's lines")
    report = commands.add_parser(
        "report",
        help="draw activities and checks as a timeline PNG (extra: report)",
        description="Draw one row per camera and activity: segments as bars, passed checks green, failed red. "
        "The time axis is wall-clock time for live cameras, media seconds for files.",
    )
    report.add_argument("events", nargs="+", metavar="EVENTS",
                        help="events files, folders of them, or globs (quoted: 'logs/*.jsonl'), read in time order")
    report.add_argument("-o", "--output", required=True, metavar="PNG", help="where to write the timeline")


def _load_run_config(args: argparse.Namespace):
    from edge.config import embedded_default_mapping, load_config

    flags = {
        "source": getattr(args, "source", None),
        "model.path": getattr(args, "model", None),
        "output.video": getattr(args, "output_video", None),
        "output.events": getattr(args, "events", None),
        "output.summary": getattr(args, "summary", None),
    }
    overrides = [f"{key}={json.dumps(value)}" for key, value in flags.items() if value is not None]
    if getattr(args, "display", False):
        overrides.append("output.display=true")
    base = None if args.config else embedded_default_mapping()
    return load_config(args.config, [*overrides, *args.overrides], base=base)


def _cmd_run(args: argparse.Namespace) -> int:
    from edge import pipeline

    return pipeline.run(_load_run_config(args), mode="run").exit_code


def _cmd_serve(args: argparse.Namespace) -> int:
    from edge import pipeline
    from edge.config import load_config

    return pipeline.run(load_config(args.config, args.overrides), mode="serve").exit_code


def _cmd_config(args: argparse.Namespace) -> int:
    from edge.config import config_json_schema, config_to_yaml, load_config

    if args.config_command == "schema":
        print(json.dumps(config_json_schema(), indent=2, ensure_ascii=False))
        return 0
    if args.config_command == "validate":
        config = load_config(args.path, args.overrides)
        _check_labels(config)
        cameras = ", ".join(config.cameras)
        print(f"{args.path}: valid ({len(config.cameras)} camera{'s' if len(config.cameras) > 1 else ''}: {cameras})")
        return 0
    print(config_to_yaml(_load_run_config(args), resolved=True), end="")
    return 0


def _check_labels(config) -> None:
    """Activity labels against what the model will have: the configured model's labels (and ``custom:NAME``
    classes), else model.labels if set, else the bundled Kinetics-400 (``edge.replay.model_labels``)."""
    from edge.config import ConfigError, check_activity_labels
    from edge.replay import ReplayError, model_labels

    try:
        labels = model_labels(config)
    except ReplayError as error:
        raise ConfigError(f"{config.origin}: model: {error}", origin=config.origin, key="model.labels") from None
    check_activity_labels(config, labels)


def _cmd_info(args: argparse.Namespace) -> int:
    from edge.info import collect_info, format_info

    info = collect_info()
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


def _cmd_model(args: argparse.Namespace) -> int:
    from edge import models

    action = args.model_command
    if action == "demo":
        path = models.save_demo_model(args.output, seed=args.seed)
        print(f"untrained demo model (seed {args.seed}) written to {path}")
    elif action == "fetch":
        path = models.fetch_model(args.name, output_dir=args.output)
        print(f"{args.name}: {path}")
    elif action == "convert":
        path = models.convert_model(args.src, args.output, fp16=args.fp16)
        print(f"converted {args.src} to {path}")
    elif action == "quantize":
        from edge.models.quantize import quantize_model

        report = quantize_model(args.model, args.calibration, args.output, subset=args.subset)
        print(_format_quantize_report(report))
    elif action == "info":
        description = models.describe_model(args.model)
        print(json.dumps(description, indent=2) if args.json else _format_description(description))
    elif action == "list":
        for name, entry in models.load_manifest().items():
            print(f"{name:28s} {entry.description}")
    return 0


def _format_quantize_report(report) -> str:
    return "\n".join(
        [
            f"INT8 model written to {report.path}",
            f"calibration clips: {report.clips}",
            f"latency p50 per clip: f32 {report.f32_p50_ms:.1f} ms, INT8 {report.int8_p50_ms:.1f} ms ({report.speedup:.2f}x)",
            f"top-1 agreement with f32: {report.top1_agreement:.0%} of clips (logit correlation {report.logits_correlation:.4f})",
            *([f"custom head top-1 agreement with f32: {report.custom_top1_agreement:.0%} of clips"]
              if report.custom_top1_agreement is not None else []),
        ]
    )


def _format_description(description: dict) -> str:
    def ports(items):
        return ", ".join(f"{p['name'] or '?'} {'x'.join(map(str, p['shape']))} {p['type']}" for p in items)

    precisions = ", ".join(f"{name} {count:,}" for name, count in description["weight_precisions"].items())
    lines = [
        f"model:       {description['path']}",
        f"source:      {description['source']}",
        f"inputs:      {ports(description['inputs'])}",
        f"outputs:     {ports(description['outputs'])}",
        f"parameters:  {description['parameters']:,} ({precisions})",
        f"quantized:   {'yes' if description['quantized'] else 'no'}",
        f"clip:        {description['clip_len']} frames of {description['size']}x{description['size']}, mean {description['mean']}",
        f"labels:      {description['labels']} (classes: {description['num_classes']})",
    ]
    for head in description.get("heads", [])[1:]:  # a learned head (edge-har learn) beside the model's own
        lines.append(f"custom head: {head['classes']} classes as custom:NAME ({', '.join(head['labels'])}), "
                     f"output {head['output']}")
    if description["untrained"]:
        lines.append("untrained:   YES - untrained demo model, its labels are meaningless")
    return "\n".join(lines)


def _cmd_replay(args: argparse.Namespace) -> int:
    from edge.config import load_config
    from edge.eventfiles import EventFilesError, expand_events
    from edge.replay import ReplayError, replay_files

    config = load_config(args.config, args.overrides)
    try:
        for event in replay_files(expand_events(args.events), config, camera=args.camera):
            sys.stdout.write(json.dumps(event.to_json_dict(), ensure_ascii=False) + "\n")
    except (ReplayError, EventFilesError) as error:
        print(f"edge-har: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as error:
        if isinstance(error, BrokenPipeError):  # `edge-har replay ... | head`
            return 0
        print(f"edge-har: error: cannot read {error.filename}: {error.strerror or error}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from edge.eventfiles import EventFilesError, expand_events
    from edge.replay import ReplayError, parse_line

    try:
        paths = expand_events(args.events)
    except EventFilesError as error:
        print(f"edge-har: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    records = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as lines:
                records.extend(r for number, line in enumerate(lines, 1) if (r := parse_line(line, number)))
        except ReplayError as error:
            print(f"edge-har: error: {path}: {error}", file=sys.stderr)
            return EXIT_USER_ERROR
        except OSError as error:
            print(f"edge-har: error: cannot read {path}: {error.strerror or error}", file=sys.stderr)
            return EXIT_USER_ERROR
    try:
        from edge.report import draw_timeline

        draw_timeline(records, args.output)
    except (ImportError, ValueError, OSError) as error:
        print(f"edge-har: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(f"timeline written to {args.output}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from edge.config import load_config
    from edge.eval import EvalError, evaluate, summary_table

    overrides = [f"model.path={json.dumps(args.model)}"] if args.model else []
    config = load_config(args.config, [*overrides, *args.overrides])
    try:
        if args.report:
            from edge.eval.report import require_matplotlib

            require_matplotlib()  # a missing matplotlib is said before the long part
        result = evaluate(args.data, config, events=args.events, sweep=args.sweep,
                          tolerance_s=args.check_tolerance_s, progress=sys.stderr.isatty() and not args.quiet)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as handle:
                json.dump(result.numbers, handle, indent=1)
                handle.write("\n")
        if args.report:
            from edge.eval.report import write_report

            index = write_report(result, args.report)
    except EvalError as error:
        print(f"edge-har: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as error:
        print(f"edge-har: error: cannot write {error.filename}: {error.strerror or error}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(summary_table(result.numbers))
    if args.report:
        print(f"report written to {index}")
    return 0


def _holdout(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


def _cmd_learn(args: argparse.Namespace) -> int:
    from edge.config import load_config
    from edge.learn import LearnError, learn, summary

    overrides = [f"model.path={json.dumps(args.model)}"] if args.model else []
    config = load_config(args.config, [*overrides, *args.overrides])
    try:
        numbers = learn(args.data, args.output, config, holdout=_holdout(args.holdout), background=args.background,
                        force=args.force, progress=sys.stderr.isatty() and not args.quiet)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as handle:
                json.dump(numbers, handle, indent=1)
                handle.write("\n")
    except LearnError as error:
        print(f"edge-har: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as error:
        print(f"edge-har: error: cannot write {error.filename}: {error.strerror or error}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(summary(numbers))
    return 0


COMMANDS = {"run": _cmd_run, "serve": _cmd_serve, "config": _cmd_config, "info": _cmd_info, "model": _cmd_model,
            "replay": _cmd_replay, "report": _cmd_report, "eval": _cmd_eval, "learn": _cmd_learn}


def _configure_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="edge-har: %(levelname)s: %(message)s", stream=sys.stderr)


def _quiet_native_logs(args: argparse.Namespace) -> None:
    """Keep OpenCV's and FFmpeg's own stderr chatter ("moov atom not found", "can't open camera by
    index") for -v: edge-har reports the same problem as one line. Must run before cv2 is imported."""
    if not args.verbose:
        os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USER_ERROR
    _quiet_native_logs(args)
    _configure_logging(args)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("edge-har: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `edge-har ... | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:
        if isinstance(error, _user_errors()):
            print(f"edge-har: error: {error}", file=sys.stderr)
            return EXIT_USER_ERROR
        raise
