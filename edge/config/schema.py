"""The configuration as pydantic v2 models: each section a frozen model whose fields say their limits.

Each section is listed once: the per-camera ones in ``CameraSections``, the shared ones in
``ServiceConfig``. A camera's config is the top-level per-camera sections deep-merged with the
camera's overrides *before* validation (``edge.config.loader``), so ``CameraConfig`` is a full
model. Rules between keys are the ``verify_*`` model validators; one that blames a key raises
``at(path, problem)``. ``file_model()`` describes the YAML file itself (a camera's sections are
partial overrides there) for the JSON Schema.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from typing import Annotated, Any, ClassVar, Literal, Optional, get_args, get_origin

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr,
                      create_model, model_validator)
from pydantic_core import PydanticCustomError

from edge.config.values import (NAME_PATTERN, ActivityName, AutoBool, AutoOrInteger, CameraName, Labels, Mean,
                                OptionalPath, OptionalText, Smoothing, SmoothingSpec, Source, Text, What,
                                check_camera_name, scalar_text, source_kind)

AT_ERROR = "edge_at"  # ctx {"at": key path below the model, "problem", "blame"?: {key: problem}, "keyless"?}
OUTPUT_PATHS = ("video", "subtitles", "events", "summary")   # may hold {camera}
HWACCELS = ("auto", "none", "qsv", "vaapi")
RULE_KINDS = ("min_duration", "sequence", "forbidden", "followed_by")
CLIP_MODES = ("none", "failed_checks", "checks", "activities")   # evidence.clips


def _as_tuple(data: Any, key: str) -> Any:
    """``data`` with its list ``key`` as a tuple (sections are frozen and hashable)."""
    if isinstance(data, dict) and isinstance(data.get(key), list):
        data = {**data, key: tuple(data[key])}
    return data


def at(path: str | tuple, problem: str, **extra: Any) -> PydanticCustomError:
    """An error that belongs to the key ``path`` (relative to the model raising it)."""
    path = (path,) if isinstance(path, str) else tuple(path)
    return PydanticCustomError(AT_ERROR, "{problem}", {"at": path, "problem": problem, **extra})


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, validate_default=False)

    @model_validator(mode="before")
    @classmethod
    def _choices_in_any_case(cls, data: Any) -> Any:
        """A choice may be written in any case, with spaces around ("Batch ")."""
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                value = data.get(name)
                if get_origin(field.annotation) is Literal and isinstance(value, str) \
                        and value.strip().lower() in get_args(field.annotation):
                    data = {**data, name: value.strip().lower()}
        return data


Hwaccel = Literal[HWACCELS]


class ModelConfig(Section):
    """``model:`` (shared by all cameras)."""

    path: OptionalPath = Field(None, description="model file (.xml, .onnx) or a folder holding one; "
                                                 "null = the fetched real model, else the untrained demo model")
    labels: OptionalPath = Field(None, description="labels file, one per line; null = the bundled Kinetics-400 labels")


class InferenceConfig(Section):
    """``inference:`` (shared by all cameras)."""

    device: Text = Field("CPU", description="OpenVINO device (CPU, GPU, NPU, AUTO, ...)")
    precision: Literal["auto", "f32", "bf16", "f16"] = "auto"
    performance_hint: Literal["auto", "latency", "throughput"] = Field(
        "auto", description="auto = latency for one camera, throughput for several")
    num_requests: AutoOrInteger = Field(None, description="parallel inference requests; auto = the device's optimum")
    cache_dir: OptionalPath = Field(None, description="OpenVINO compiled-model cache folder; null = none")
    max_wait_ms: StrictInt = Field(400, ge=0, description="how long a live camera's clip may wait for an inference "
                                                          "request before a fresher clip replaces it")


class SamplingConfig(Section):
    mode: Literal["batch", "rolling"] = "batch"
    clip_len: StrictInt = Field(16, ge=1)
    frame_step: StrictInt = Field(1, ge=1)
    stride: StrictInt = Field(1, ge=1, description="rolling mode: predict every N sampled frames "
                                                   "(batch mode uses clip_len)")


class PreprocessConfig(Section):
    size: StrictInt = Field(112, ge=1)
    mean: Mean = Field(None, description="RGB mean subtracted; null = the model's metadata (Kinetics mean)")
    interpolation: Literal["linear", "area"] = "linear"


class PostprocessConfig(Section):
    top_k: StrictInt = Field(5, ge=1, le=1000)
    smoothing: Smoothing = Field(SmoothingSpec("none"), description="none, mean:N or ema:A")
    threshold: StrictFloat = Field(0.0, ge=0.0, le=1.0)


class GatingConfig(Section):
    min_motion: StrictFloat = Field(0.0, ge=0.0, le=255.0, description="skip clips whose frames all move less "
                                    "than this (mean absolute difference, 0-255); 0 = off")


class DecodeConfig(Section):
    hwaccel: Hwaccel = "auto"
    threads: AutoOrInteger = Field(None, description="decoder threads; auto = the decoder's choice")


class OutputConfig(Section):
    display: StrictBool = False
    video: OptionalPath = Field(None, description="annotated video (H.264 .mp4); {camera} = the camera name")
    video_max_width: StrictInt = Field(1280, ge=16)
    subtitles: OptionalPath = Field(None, description="WebVTT subtitles of the predictions; {camera} expands")
    events: OptionalPath = Field(None, description="events.jsonl; {camera} expands")
    include_scores: StrictBool = False
    summary: OptionalPath = Field(None, description="summary.json; {camera} expands")
    log_every_s: StrictFloat = Field(10.0, gt=0.0)
    overwrite: StrictBool = False
    overlay_stats: StrictBool = True
    progress: AutoBool = Field(None, description="auto = only on a terminal")
    rotate: Literal["auto", "daily", "none"] = Field(
        "auto", description="events files: a new one each day (events-YYYY-MM-DD.jsonl); auto = daily under "
                            "serve, none under run")
    retain_days: StrictFloat = Field(30.0, gt=0.0, description="rotated events files older than this are deleted")


class ReconnectConfig(Section):
    attempts: StrictInt = Field(10, ge=0)
    delay_s: StrictFloat = Field(0.5, gt=0.0)
    max_delay_s: StrictFloat = Field(10.0, gt=0.0)
    live: AutoBool = Field(None, description="auto = cameras and URLs are live")
    watchdog_s: StrictFloat = Field(20.0, gt=0.0)
    open_timeout_s: StrictFloat = Field(10.0, gt=0.0)
    read_timeout_s: StrictFloat = Field(10.0, gt=0.0)

    @model_validator(mode="after")
    def verify_delays_in_order(self):
        if self.max_delay_s < self.delay_s:   # the key set last is blamed (edge.config.loader)
            raise at("max_delay_s", "", blame={
                "max_delay_s": f"must be ≥ reconnect.delay_s ({self.delay_s!r}), got {self.max_delay_s!r}",
                "delay_s": f"must be ≤ reconnect.max_delay_s ({self.max_delay_s!r}), got {self.delay_s!r}"})
        return self


class RecordConfig(Section):
    """``record:`` the camera's stream kept as segments: its own packets remuxed to MP4, no decode, no encode."""

    source: Source = Field(None, description="the stream recorded (e.g. the main stream when source is the "
                                             "sub-stream); null = the camera's source")
    continuous: StrictBool = Field(False, description="keep every segment; false = only what event clips need")
    segment_s: StrictFloat = Field(10.0, gt=0.0, le=3600.0)
    retain_days: StrictFloat = Field(3.0, gt=0.0)
    dir: OptionalPath = Field(None, description="null = {home}/recordings/{camera}; {camera} and {home} expand")


class EvidenceConfig(Section):
    """``evidence:`` a clip (and snapshot) of what a check judged, cut at keyframes without re-encoding."""

    clips: Literal[CLIP_MODES] = "failed_checks"
    pre_s: StrictFloat = Field(5.0, ge=0.0, le=600.0)
    post_s: StrictFloat = Field(5.0, ge=0.0, le=600.0)
    snapshot: StrictBool = True
    dir: OptionalPath = Field(None, description="null = {home}/clips/{camera}; {camera} and {home} expand")
    retain_days: StrictFloat = Field(30.0, gt=0.0)


def _polygon(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        if len(value) < 3:
            raise ValueError(f"a mask polygon needs at least 3 points [x, y], got {len(value)}")
        points = []
        for point in value:
            if (not isinstance(point, (list, tuple)) or len(point) != 2
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in point)):
                raise ValueError(f"a mask point is [x, y] with numbers in 0-1, got {scalar_text(point)}")
            if not all(0.0 <= float(v) <= 1.0 for v in point):
                raise ValueError(f"mask points are in 0-1 image coordinates, got {list(point)}")
            points.append((float(point[0]), float(point[1])))
        return tuple(points)
    return value


Polygon = Annotated[tuple[tuple[float, float], ...], BeforeValidator(_polygon),
                    What("a list of at least 3 points [x, y] in 0-1")]


def _capped(seconds: float, hours: float | None) -> float:
    return seconds if hours is None else min(seconds, hours * 3600.0)


class PrivacyConfig(Section):
    """``privacy:`` what pictures may be kept or served."""

    pictures: StrictBool = Field(True, description="false: no pixel leaves memory (no clips, snapshots, "
                                                   "recordings, video, live view); labels only")
    masks: tuple[Polygon, ...] = Field((), description="polygons in 0-1 image coordinates, filled black in all "
                                                       "that is stored or served")
    mask_inference: StrictBool = Field(False, description="the model sees the masked picture too")
    retain_pictures_h: Optional[StrictFloat] = Field(None, gt=0.0, description="recordings, clips and snapshots "
                                                     "older than this are deleted, whatever retain_days says")

    _masks_as_tuple = model_validator(mode="before")(classmethod(lambda cls, data: _as_tuple(data, "masks")))


class StorageConfig(Section):
    """``storage:`` (shared) the disk the evidence lives on."""

    min_free_gb: StrictFloat = Field(1.0, ge=0.0, description="below it, the oldest recordings go first, then "
                                                              "the oldest clips")


class ActivityConfig(Section):
    """One site activity: the model labels whose probabilities add up to its score."""

    missing: ClassVar[str] = "an activity needs labels (a list of model labels)"

    labels: Labels
    min_score: StrictFloat = Field(0.5, gt=0.0, le=1.0)
    gap_s: StrictFloat = Field(2.0, ge=0.0)
    update_s: StrictFloat = Field(5.0, gt=0.0)


# ---------------------------------------------------------------- rules

RULE_KEYS = {   # kind → (required keys, optional keys); name, kind and cameras are always allowed
    "min_duration": (("activity", "seconds"), ()),
    "sequence": (("steps",), ("within_s",)),
    "forbidden": (("activity",), ()),
    "followed_by": (("first", "then", "within_s"), ()),
}
_REF = f"{NAME_PATTERN}(?:@{NAME_PATTERN})?"


def _reference(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(_REF, value):
        raise ValueError(f"must be an activity name or ACTIVITY@CAMERA (names: 1 to 32 of a-z 0-9 _ -), "
                         f"got {scalar_text(value)}")
    return value


def _steps(value: Any) -> Any:
    if isinstance(value, (list, tuple)) and len(value) < 2:
        raise ValueError(f"must be a list of at least 2 activities, got {len(value)}")
    return tuple(value) if isinstance(value, list) else value


Reference = Annotated[StrictStr, BeforeValidator(_reference), What("an activity name or ACTIVITY@CAMERA")]
Steps = Annotated[Optional[Annotated[tuple[Reference, ...], Field(min_length=2)]], BeforeValidator(_steps),
                  What("a list of at least 2 activities")]
CameraList = Annotated[Optional[Annotated[tuple[Annotated[StrictStr, BeforeValidator(check_camera_name)], ...],
                                          Field(min_length=1)]],
                       BeforeValidator(lambda value: tuple(value) if isinstance(value, list) else value),
                       What("a non-empty list of camera names or null")]


class RuleConfig(Section):
    """One check on activities. Which keys a rule needs depends on its ``kind`` (``RULE_KEYS``)."""

    model_config = ConfigDict(json_schema_extra=lambda schema: schema.update(allOf=[
        {"if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]}, "then": {"required": list(needed)}}
        for kind, (needed, _) in RULE_KEYS.items()]))
    missing: ClassVar[str] = "a rule needs a name and a kind"

    name: Annotated[StrictStr, What("a rule name: 1 to 64 of A-Z a-z 0-9 _ . -")] = Field(
        pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    kind: Literal[RULE_KINDS]
    activity: Annotated[Optional[Reference], What("an activity name or ACTIVITY@CAMERA")] = None
    seconds: Optional[StrictFloat] = Field(None, gt=0.0)
    steps: Steps = None
    first: Annotated[Optional[Reference], What("an activity name or ACTIVITY@CAMERA")] = None
    then: Annotated[Optional[Reference], What("an activity name or ACTIVITY@CAMERA")] = None
    within_s: Optional[StrictFloat] = Field(None, gt=0.0)
    cameras: CameraList = Field(None, description="cameras the rule runs on; null = every camera")

    @model_validator(mode="after")
    def verify_keys_of_the_kind(self):
        required, optional = RULE_KEYS[self.kind]
        for key in required:
            if getattr(self, key) is None:
                raise at(key, f"missing: a {self.kind} rule needs {', '.join(required)}")
        for key in ("activity", "seconds", "steps", "first", "then", "within_s"):
            if key not in required + optional and getattr(self, key) is not None:
                raise at(key, f"not used by a {self.kind} rule (it takes {', '.join(required + optional)})")
        seen: dict[str, str] = {}
        for key, reference in self.references():
            if reference in seen:
                raise at(_path(key), f"repeats {seen[reference]} ({reference!r}): a rule's steps must differ")
            seen[reference] = key
        return self

    def references(self) -> list[tuple[str, str]]:
        """(key, activity reference) pairs this rule names, e.g. ("steps[1]", "handwash@sink")."""
        refs = [(key, getattr(self, key)) for key in ("activity", "first", "then") if getattr(self, key)]
        refs += [(f"steps[{i}]", step) for i, step in enumerate(self.steps or ())]
        return refs


def _path(key: str) -> tuple:
    """"steps[1]" → ("steps", 1)."""
    name, _, index = key.partition("[")
    return (name, int(index[:-1])) if index else (name,)


# ---------------------------------------------------------------- shared sections

class MqttConfig(Section):
    """``mqtt:`` (shared by all cameras); ``host: null`` turns MQTT off. ``MqttSink`` reads it as it is."""

    host: OptionalText = Field(None, description="broker host; null = MQTT off")
    port: StrictInt = Field(1883, ge=1, le=65535)
    topic_prefix: Text = "edge-har"
    client_id: OptionalText = None
    username: OptionalText = None
    password: OptionalText = None
    tls: StrictBool = False
    ca_file: OptionalPath = None
    homeassistant: StrictBool = True
    discovery_prefix: Text = "homeassistant"
    spool_dir: OptionalPath = Field(None, description="null = $EDGE_HAR_HOME/spool")
    spool_max_mb: StrictFloat = Field(50.0, gt=0.0)
    predictions: StrictBool = False
    keepalive_s: StrictInt = Field(30, ge=1, le=65535)

    @model_validator(mode="after")
    def verify_topics(self):
        for key in ("topic_prefix", "discovery_prefix"):
            value = getattr(self, key)
            if any(char in value for char in "+#\x00") or value.startswith("/") or value.endswith("/"):
                raise at(key, f"must be an MQTT topic without + or # and without a leading or trailing /, "
                              f"got {value!r}")
        return self


class HttpConfig(Section):
    """``http:`` (shared by all cameras)."""

    enabled: AutoBool = Field(None, description="auto = on for serve, off for run")
    host: Text = "127.0.0.1"
    port: StrictInt = Field(8080, ge=1, le=65535)
    token: OptionalText = Field(None, description="bearer token; required when host is not a loopback address")

    @model_validator(mode="after")
    def verify_token_off_loopback(self):
        if self.enabled is not False and self.token is None and not is_loopback(self.host):
            raise at("host", f"serving on {self.host!r} (not a loopback address) needs http.token, so that only "
                             f"who holds it sees the cameras (e.g. token: ${{EDGE_HAR_TOKEN}})")
        return self


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------- cameras and the service

class CameraSections(Section):
    """The per-camera sections: the top level's are every camera's defaults."""

    sampling: SamplingConfig = SamplingConfig()
    preprocess: PreprocessConfig = PreprocessConfig()
    postprocess: PostprocessConfig = PostprocessConfig()
    gating: GatingConfig = GatingConfig()
    decode: DecodeConfig = DecodeConfig()
    output: OutputConfig = OutputConfig()
    reconnect: ReconnectConfig = ReconnectConfig()
    record: RecordConfig = RecordConfig()
    evidence: EvidenceConfig = EvidenceConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    activities: dict[ActivityName, ActivityConfig] = {}


class CameraConfig(CameraSections):
    """One camera: its source, its effective sections (output paths with {camera} expanded), and the
    source resolved once: ``kind``, ``live`` and ``time_base``."""

    name: str
    source: Source = None

    @model_validator(mode="before")
    @classmethod
    def _expand_camera_in_paths(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            return data
        for section, keys in (("output", OUTPUT_PATHS), ("record", ("dir",)), ("evidence", ("dir",))):
            values = data.get(section)
            if isinstance(values, dict):
                data = {**data, section: {key: value.replace("{camera}", data["name"])
                                          if key in keys and isinstance(value, str) else value
                                          for key, value in values.items()}}
        return data

    @model_validator(mode="after")
    def verify_privacy(self):
        """A picture output set on purpose while ``privacy.pictures`` is false is an error naming both keys."""
        if self.privacy.pictures:
            return self
        for section, key, on in (("output", "video", bool(self.output.video)),
                                 ("output", "display", self.output.display),
                                 ("evidence", "clips", self.evidence.clips != "none"),
                                 ("record", "continuous", self.record.continuous),
                                 ("record", "source", self.record.source is not None)):
            if on and key in getattr(self, section).model_fields_set:
                raise at((section, key), f"{section}.{key} keeps pictures, but privacy.pictures is false "
                                         f"(remove one of them)")
        return self

    @property
    def keeps_pictures(self) -> bool:
        """Whether any picture of this camera may be stored or served (``privacy.pictures``)."""
        return self.privacy.pictures

    @property
    def recordings_max_age_s(self) -> float:
        """How long a recording segment is kept: ``record.retain_days``, capped by ``privacy.retain_pictures_h``."""
        return _capped(self.record.retain_days * 86400.0, self.privacy.retain_pictures_h)

    @property
    def clips_max_age_s(self) -> float:
        """How long a clip and its snapshot are kept: ``evidence.retain_days``, capped the same way."""
        return _capped(self.evidence.retain_days * 86400.0, self.privacy.retain_pictures_h)

    @property
    def clips(self) -> str:
        """``evidence.clips`` as it applies: ``none`` when pictures may not be kept."""
        return self.evidence.clips if self.privacy.pictures else "none"

    @property
    def kind(self) -> Literal["file", "device", "stream"]:
        """``device`` (a camera index or V4L2 path), ``stream`` (a URL) or ``file`` (null: the sample clip)."""
        return source_kind(self.source)

    @property
    def live(self) -> bool:
        """``reconnect.live``, or for auto: devices and streams are live, files are not."""
        return self.kind != "file" if self.reconnect.live is None else self.reconnect.live

    @property
    def time_base(self) -> Literal["media", "wall"]:
        """The clock of this camera's activities and checks: ``wall`` when live, else ``media``."""
        return "wall" if self.live else "media"


class _Engine(Section):
    """The shared sections that come first in the file."""

    model: ModelConfig = ModelConfig()
    inference: InferenceConfig = InferenceConfig()


class ServiceConfig(CameraSections, _Engine):
    """What runs: the shared sections, the top-level defaults, and every camera (≥ 1, in file order).

    ``origin`` (the file, ``--set`` or ``<mapping>``) and which values came from ``${VAR}`` are
    not part of equality.
    """

    rules: tuple[RuleConfig, ...] = ()
    mqtt: MqttConfig = MqttConfig()
    http: HttpConfig = HttpConfig()
    storage: StorageConfig = StorageConfig()
    cameras: dict[str, CameraConfig]
    single_camera: bool = True
    origin: Optional[str] = Field(None, exclude=True)
    env_keys: frozenset[str] = Field(frozenset(), exclude=True, description="dotted keys whose values came from ${VAR}")

    _rules_as_tuple = model_validator(mode="before")(classmethod(lambda cls, data: _as_tuple(data, "rules")))

    @model_validator(mode="after")
    def verify_outputs_apart(self):
        writers: dict[str, tuple[str, str]] = {}
        for name, camera in self.cameras.items():
            for key in OUTPUT_PATHS:
                path = getattr(camera.output, key)
                if not path:
                    continue
                other, other_key = writers.setdefault(os.path.normpath(path), (name, key))
                if (other, other_key) == (name, key):
                    continue
                if other == name:
                    problem = f"camera {name} would write output.{other_key} and output.{key} to one file {path}"
                elif other_key == key:
                    problem = (f"cameras {other} and {name} would both write output.{key} {path}; "
                               f"put {{camera}} in the path")
                else:
                    problem = (f"cameras {other} (output.{other_key}) and {name} (output.{key}) would both "
                               f"write {path}; put {{camera}} in the path")
                raise at(("cameras", name, "output", key), problem, keyless=True)
        return self

    @model_validator(mode="after")
    def verify_rule_references(self):
        activities = set(self.activities).union(*(camera.activities for camera in self.cameras.values()))
        names: dict[str, int] = {}
        for index, rule in enumerate(self.rules):
            if rule.name in names:
                raise at(("rules", index, "name"),
                         f"duplicate rule name {rule.name!r} (also rules[{names[rule.name]}])")
            names[rule.name] = index
            for key, reference in rule.references():
                activity, _, camera = reference.partition("@")
                where = ("rules", index, *_path(key))
                if activity not in activities:
                    raise at(where, f"unknown activity {activity!r}" + _hint(activity, activities, "activities"))
                if camera and camera not in self.cameras:
                    raise at(where, f"unknown camera {camera!r} in {reference!r}"
                             + _hint(camera, self.cameras, "cameras"))
            for position, camera in enumerate(rule.cameras or ()):
                if camera not in self.cameras:
                    raise at(("rules", index, "cameras", position), f"unknown camera {camera!r}"
                             + _hint(camera, self.cameras, "cameras"))
            tied = {reference.partition("@")[2] for _, reference in rule.references()} - {""}
            if tied and any("@" not in reference for _, reference in rule.references()):
                tied |= set(rule.cameras or self.cameras)   # an untied step of a tied rule runs on these
            if len({self.cameras[camera].time_base for camera in tied}) > 1:
                raise at(("rules", index), "spans cameras with media time and wall time; their times cannot be "
                                           "compared (give them the same reconnect.live)")
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ServiceConfig):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in type(self).model_fields
                   if name not in ("origin", "env_keys"))

    __hash__ = None  # type: ignore[assignment]

    # A single-camera file (``source:`` without ``cameras:``) reads like release 1's.
    @property
    def camera(self) -> CameraConfig:
        """The only camera; ValueError when there are several."""
        if len(self.cameras) != 1:
            raise ValueError(f"{len(self.cameras)} cameras: pick one from config.cameras")
        return next(iter(self.cameras.values()))

    @property
    def source(self) -> str | None:
        """The only camera's source."""
        return self.camera.source


def _hint(name: str, known, what: str) -> str:
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" ({what}: {', '.join(known)})" if known else f" (no {what} are defined)"


PER_CAMERA = tuple(CameraSections.model_fields)
SECTIONS = tuple(name for name in ServiceConfig.model_fields if name not in ("cameras", "single_camera", "origin",
                                                                             "env_keys"))
GLOBAL_ONLY = tuple(name for name in SECTIONS if name not in PER_CAMERA)
TOP_LEVEL = ("source", *SECTIONS, "cameras")   # the keys of the file's top level
CAMERA_KEYS = ("source", *PER_CAMERA)          # the keys under cameras.NAME


# ---------------------------------------------------------------- the file format (for the JSON Schema)

def _annotated(field) -> Any:
    """A field's type with its validators and limits put back."""
    return Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation


def _optional(model: type[BaseModel], name: str, required: tuple[str, ...] = ()) -> type[BaseModel]:
    """The section with every key optional (a camera's override): no defaults, no cross-key checks."""
    fields = {key: (_annotated(field) if key in required else Optional[_annotated(field)],
                    Field(... if key in required else None, description=field.description))
              for key, field in model.model_fields.items()}
    return create_model(name, __config__=Section.model_config, **fields)


def file_model() -> type[BaseModel]:
    """``ConfigFile``: the YAML file, top-level sections complete (or null), a camera's sections partial."""
    camera = {name: (Optional[_optional(CameraConfig.model_fields[name].annotation, f"{name.title()}Override")], None)
              for name in PER_CAMERA if name != "activities"}
    camera["activities"] = (Optional[dict[ActivityName, _optional(ActivityConfig, "ActivityOverride")]], None)
    camera["source"] = (Source, Field(..., description="a file, a camera index, a device or a URL; null = the sample"))
    camera_file = create_model("CameraFile", __config__=Section.model_config, **camera)
    top: dict[str, Any] = {name: (Optional[_annotated(ServiceConfig.model_fields[name])],
                                  Field(ServiceConfig.model_fields[name].default,
                                        description=ServiceConfig.model_fields[name].description))
                           for name in SECTIONS}
    top["rules"] = (Optional[list[RuleConfig]], [])
    top["source"] = (Source, Field(None, description="single-camera shorthand (without cameras:); null = the sample"))
    top["cameras"] = (Optional[dict[CameraName, camera_file]],
                      Field(None, description="camera name → camera; without it, source: is the one camera"))
    return create_model("ConfigFile", __config__=Section.model_config, __doc__="edge-har configuration file (YAML).",
                        **{key: top[key] for key in TOP_LEVEL})
