"""The configuration as pydantic v2 models: one frozen, strict model per section, ``extra="forbid"``.

A camera's config is the top-level per-camera sections deep-merged with the camera's
overrides *before* validation (``edge.config.loader``), so ``CameraConfig`` is a full model.
``ConfigFile`` (built by ``file_model()``) describes the YAML file itself, where a camera's
sections are partial overrides; it exists for the JSON Schema.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator
from pydantic_core import PydanticCustomError

from edge.config.values import (
    ActivityName,
    AutoFlag,
    AutoOrInteger,
    CameraName,
    Choice,
    Flag,
    Integer,
    Invalid,
    Labels,
    Mean,
    Number,
    OptionalPath,
    OptionalText,
    Smoothing,
    SmoothingSpec,
    Source,
    Text,
    describe,
    leaf,
    name_check,
    scalar_text,
    source_kind,
)

AT_ERROR = "edge_at"        # a model-level problem that belongs to one of its keys: ctx {"at", "problem"}
BLAME_ERROR = "edge_blame"  # a problem between two keys: ctx {"blame": {key: problem}}; the later-set key is named


def at(key: str, problem: str) -> PydanticCustomError:
    return PydanticCustomError(AT_ERROR, "{problem}", {"at": key, "problem": problem})


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, validate_default=False)


class ModelConfig(Section):
    """``model:`` (shared by all cameras)."""

    path: OptionalPath = Field(None, description="model file (.xml, .onnx) or a folder holding one; "
                                                 "null = the fetched real model, else the untrained demo model")
    labels: OptionalPath = Field(None, description="labels file, one per line; null = the bundled Kinetics-400 labels")


class InferenceConfig(Section):
    """``inference:`` (shared by all cameras)."""

    device: Text = Field("CPU", description="OpenVINO device (CPU, GPU, NPU, AUTO, ...)")
    precision: Choice("auto", "f32", "bf16", "f16") = "auto"
    performance_hint: Choice("auto", "latency", "throughput") = Field(
        "auto", description="auto = latency for one camera, throughput for several")
    num_requests: AutoOrInteger(1) = Field(None, description="parallel inference requests; auto (stored None) "
                                                             "= the device's optimum")
    cache_dir: OptionalPath = Field(None, description="OpenVINO compiled-model cache folder; null = none")
    max_wait_ms: Integer(0) = Field(400, description="how long a live camera's clip may wait for an inference "
                                                     "request before a fresher clip replaces it")


class SamplingConfig(Section):
    mode: Choice("batch", "rolling") = "batch"
    clip_len: Integer(1) = 16
    frame_step: Integer(1) = 1
    stride: Integer(1) = Field(1, description="rolling mode: predict every N sampled frames (batch mode uses clip_len)")


class PreprocessConfig(Section):
    size: Integer(1) = 112
    mean: Mean = Field(None, description="RGB mean subtracted; null = the model's metadata (Kinetics mean)")
    interpolation: Choice("linear", "area") = "linear"


class PostprocessConfig(Section):
    top_k: Integer(1, 1000) = 5
    smoothing: Smoothing = Field(SmoothingSpec("none"), description="none, mean:N or ema:A")
    threshold: Number(0.0, 1.0) = 0.0


class GatingConfig(Section):
    min_motion: Number(0.0, 255.0) = Field(0.0, description="skip clips whose frames all move less than this "
                                                            "(mean absolute difference, 0-255); 0 = off")


class DecodeConfig(Section):
    hwaccel: Choice("auto", "none", "qsv", "vaapi") = "auto"
    threads: AutoOrInteger(1) = Field(None, description="decoder threads; auto (stored None) = the decoder's choice")


class OutputConfig(Section):
    display: Flag = False
    video: OptionalPath = Field(None, description="annotated video (H.264 .mp4); {camera} = the camera name")
    video_max_width: Integer(16) = 1280
    subtitles: OptionalPath = Field(None, description="WebVTT subtitles of the predictions; {camera} expands")
    events: OptionalPath = Field(None, description="events.jsonl; {camera} expands")
    include_scores: Flag = False
    summary: OptionalPath = Field(None, description="summary.json; {camera} expands")
    log_every_s: Number(0.0, exclusive_min=True) = 10.0
    overwrite: Flag = False
    overlay_stats: Flag = True
    progress: AutoFlag = "auto"


class ReconnectConfig(Section):
    attempts: Integer(0) = 10
    delay_s: Number(0.0, exclusive_min=True) = 0.5
    max_delay_s: Number(0.0, exclusive_min=True) = 10.0
    live: AutoFlag = Field("auto", description="auto = cameras and URLs are live")
    watchdog_s: Number(0.0, exclusive_min=True) = 20.0
    open_timeout_s: Number(0.0, exclusive_min=True) = 10.0
    read_timeout_s: Number(0.0, exclusive_min=True) = 10.0

    @model_validator(mode="after")
    def _delays_in_order(self):
        if self.max_delay_s < self.delay_s:
            raise PydanticCustomError(BLAME_ERROR, "{problem}", {
                "problem": f"must be ≥ reconnect.delay_s ({self.delay_s!r}), got {self.max_delay_s!r}",
                "blame": {
                    "max_delay_s": f"must be ≥ reconnect.delay_s ({self.delay_s!r}), got {self.max_delay_s!r}",
                    "delay_s": f"must be ≤ reconnect.max_delay_s ({self.max_delay_s!r}), got {self.delay_s!r}",
                }})
        return self


class ActivityConfig(Section):
    """One site activity: the model labels whose probabilities add up to its score."""

    labels: Labels
    min_score: Number(0.0, 1.0, exclusive_min=True) = 0.5
    gap_s: Number(0.0) = 2.0
    update_s: Number(0.0, exclusive_min=True) = 5.0


RULE_KINDS = ("min_duration", "sequence", "forbidden", "followed_by")
RULE_KEYS = {   # kind → (required keys, optional keys); name, kind and cameras are always allowed
    "min_duration": (("activity", "seconds"), ()),
    "sequence": (("steps",), ("within_s",)),
    "forbidden": (("activity",), ()),
    "followed_by": (("first", "then", "within_s"), ()),
}
_REF = re.compile(r"([a-z0-9_-]{1,32})(?:@([a-z0-9_-]{1,32}))?")


def _ref_check(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"expected an activity name or ACTIVITY@CAMERA, got {describe(value)}")
    if not _REF.fullmatch(value):
        raise Invalid(f"must be an activity name or ACTIVITY@CAMERA (names: 1 to 32 of a-z 0-9 _ -), "
                      f"got {scalar_text(value)}")
    return value


def _steps_check(value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)):
        raise Invalid(f"expected a list of at least 2 activities, got {describe(value)}")
    if len(value) < 2:
        raise Invalid(f"must be a list of at least 2 activities, got {len(value)}")
    steps = []
    for position, item in enumerate(value, start=1):
        try:
            steps.append(_ref_check(item))
        except Invalid as problem:
            raise Invalid(f"item {position}: {problem}") from None
    return tuple(steps)


def _camera_list_check(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not value:
        raise Invalid(f"expected a non-empty list of camera names or null, got {describe(value)}")
    check = name_check("camera")
    return tuple(check(item) for item in value)


ActivityRef = leaf(_ref_check, {"type": "string", "pattern": r"^[a-z0-9_-]{1,32}(@[a-z0-9_-]{1,32})?$"}, str)
Steps = leaf(_steps_check, {"type": "array", "items": {"type": "string"}, "minItems": 2}, tuple[str, ...],
             serialize=list)
CameraList = leaf(_camera_list_check, {"anyOf": [{"type": "array", "items": {"type": "string"}, "minItems": 1},
                                                 {"type": "null"}]}, Optional[tuple[str, ...]],
                  serialize=lambda value: None if value is None else list(value))
def _rule_name_check(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"expected a rule name, got {describe(value)}")
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value):
        raise Invalid(f"invalid rule name {scalar_text(value)}: use 1 to 64 of A-Z a-z 0-9 _ . -")
    return value


RuleName = leaf(_rule_name_check, {"type": "string", "pattern": r"^[A-Za-z0-9_.-]{1,64}$"}, str)


def _rule_schema(schema: dict) -> None:
    schema["allOf"] = [{"if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                        "then": {"required": list(required)}} for kind, (required, _) in RULE_KEYS.items()]


class RuleConfig(Section):
    """One check on activities. Which keys a rule needs depends on its ``kind`` (``RULE_KEYS``)."""

    model_config = ConfigDict(json_schema_extra=_rule_schema)

    name: RuleName
    kind: Choice(*RULE_KINDS)
    activity: ActivityRef | None = None
    seconds: Number(0.0, exclusive_min=True) | None = None
    steps: Steps | None = None
    first: ActivityRef | None = None
    then: ActivityRef | None = None
    within_s: Number(0.0, exclusive_min=True) | None = None
    cameras: CameraList = Field(None, description="cameras the rule runs on; null = every camera")

    @model_validator(mode="after")
    def _keys_of_the_kind(self):
        required, optional = RULE_KEYS[self.kind]
        for key in required:
            if getattr(self, key) is None:
                raise at(key, f"missing: a {self.kind} rule needs {', '.join(required)}")
        for key in ("activity", "seconds", "steps", "first", "then", "within_s"):
            if key not in required + optional and getattr(self, key) is not None:
                raise at(key, f"not used by a {self.kind} rule (it takes {', '.join(required + optional)})")
        return self

    def references(self) -> list[tuple[str, str]]:
        """(key, activity reference) pairs this rule names, e.g. ("steps[1]", "handwash@sink")."""
        refs = [(key, getattr(self, key)) for key in ("activity", "first", "then") if getattr(self, key)]
        refs += [(f"steps[{i}]", step) for i, step in enumerate(self.steps or ())]
        return refs


class MqttConfig(Section):
    """``mqtt:`` (shared by all cameras); ``host: null`` turns MQTT off."""

    host: OptionalText = Field(None, description="broker host; null = MQTT off")
    port: Integer(1, 65535) = 1883
    topic_prefix: Text = "edge-har"
    client_id: OptionalText = None
    username: OptionalText = None
    password: OptionalText = None
    tls: Flag = False
    ca_file: OptionalPath = None
    homeassistant: Flag = True
    discovery_prefix: Text = "homeassistant"
    spool_dir: OptionalPath = Field(None, description="null = $EDGE_HAR_HOME/spool")
    spool_max_mb: Number(0.0, exclusive_min=True) = 50.0
    predictions: Flag = False
    keepalive_s: Integer(1, 65535) = 30

    @model_validator(mode="after")
    def _topics(self):
        for key in ("topic_prefix", "discovery_prefix"):
            value = getattr(self, key)
            if any(char in value for char in "+#\x00") or value.startswith("/") or value.endswith("/"):
                raise at(key, f"must be an MQTT topic without + or # and without a leading or trailing /, "
                              f"got {value!r}")
        return self


class HttpConfig(Section):
    """``http:`` (shared by all cameras)."""

    enabled: AutoFlag = Field("auto", description="auto = on for serve, off for run")
    host: Text = "127.0.0.1"
    port: Integer(1, 65535) = 8080
    token: OptionalText = Field(None, description="bearer token; required when host is not a loopback address")


# ---------------------------------------------------------------- cameras and the service

PER_CAMERA = ("sampling", "preprocess", "postprocess", "gating", "decode", "output", "reconnect", "activities")
GLOBAL_ONLY = ("model", "inference", "rules", "mqtt", "http")
OUTPUT_PATHS = ("video", "subtitles", "events", "summary")   # may hold {camera}


class CameraConfig(Section):
    """One camera: its source and its effective per-camera sections (output paths with {camera} expanded)."""

    name: str
    source: Source = None
    sampling: SamplingConfig = SamplingConfig()
    preprocess: PreprocessConfig = PreprocessConfig()
    postprocess: PostprocessConfig = PostprocessConfig()
    gating: GatingConfig = GatingConfig()
    decode: DecodeConfig = DecodeConfig()
    output: OutputConfig = OutputConfig()
    reconnect: ReconnectConfig = ReconnectConfig()
    activities: dict[ActivityName, ActivityConfig] = {}

    @property
    def live(self) -> bool:
        """Whether the source is treated as live: reconnect.live, or auto (cameras and URLs)."""
        if self.reconnect.live != "auto":
            return self.reconnect.live == "true"
        return source_kind(self.source) in ("camera", "url")

    @property
    def source_kind(self) -> str:
        return source_kind(self.source)


class _SharedSections(Section):
    """The sections the top level of the file and the resolved service both hold."""

    model: ModelConfig = ModelConfig()
    inference: InferenceConfig = InferenceConfig()
    sampling: SamplingConfig = SamplingConfig()
    preprocess: PreprocessConfig = PreprocessConfig()
    postprocess: PostprocessConfig = PostprocessConfig()
    gating: GatingConfig = GatingConfig()
    decode: DecodeConfig = DecodeConfig()
    output: OutputConfig = OutputConfig()
    reconnect: ReconnectConfig = ReconnectConfig()
    activities: dict[ActivityName, ActivityConfig] = {}
    rules: tuple[RuleConfig, ...] = ()
    mqtt: MqttConfig = MqttConfig()
    http: HttpConfig = HttpConfig()

    @model_validator(mode="before")
    @classmethod
    def _rules_as_tuple(cls, data):
        if isinstance(data, dict) and isinstance(data.get("rules"), list):
            data = {**data, "rules": tuple(data["rules"])}
        return data


class GlobalSections(_SharedSections):
    """The top level of the file without ``cameras:`` (validated first, then each camera)."""

    source: Source = Field(None, description="single-camera shorthand (without cameras:); null = the bundled sample")


_COMPARED = ("model", "inference", "sampling", "preprocess", "postprocess", "gating", "decode", "output",
             "reconnect", "activities", "rules", "mqtt", "http", "cameras", "single_camera")


class ServiceConfig(_SharedSections):
    """What runs: the shared sections, the top-level defaults, and every camera (≥ 1, in file order).

    ``origin`` (the file, ``--set`` or ``<mapping>``) and which values came from ``${VAR}`` are
    not part of equality.
    """

    cameras: dict[str, CameraConfig]
    single_camera: bool = True
    origin: str | None = None
    env_keys: frozenset[str] = Field(frozenset(), description="dotted keys whose values came from ${VAR}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ServiceConfig):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in _COMPARED)

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


# ---------------------------------------------------------------- the file format (for the JSON Schema)

def _annotated(field) -> Any:
    """A field's type with its validator and schema metadata put back."""
    return Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation


def _override_model(model: type[BaseModel]) -> type[BaseModel]:
    """The same section with every key optional and no cross-key checks: a camera's partial override."""
    fields = {name: (_annotated(field), Field(None, description=field.description))
              for name, field in model.model_fields.items()}
    return create_model(f"{model.__name__}Override", __config__=Section.model_config,
                        __doc__=f"A camera's override of {model.__name__}: any subset of its keys.", **fields)


def file_model() -> type[BaseModel]:
    """``ConfigFile``: the YAML file, top-level sections complete, a camera's sections partial overrides."""
    overrides = {name: _override_model(CameraConfig.model_fields[name].annotation)
                 for name in PER_CAMERA if name != "activities"}
    activity_override = _override_model(ActivityConfig)
    camera_fields: dict[str, Any] = {"source": (Source, Field(..., description="a file, a camera index, a device "
                                                                               "or a URL; null = the sample"))}
    for name, override in overrides.items():
        camera_fields[name] = (Optional[override], None)
    camera_fields["activities"] = (Optional[dict[ActivityName, activity_override]], None)
    camera_file = create_model("CameraFile", __config__=Section.model_config,
                               __doc__="One camera: its source and any per-camera section as an override.",
                               **camera_fields)
    # null sections mean defaults, so every top-level section may be null too
    top: dict[str, Any] = {name: (Optional[_annotated(field)], Field(field.default, description=field.description))
                           for name, field in GlobalSections.model_fields.items()}
    top["rules"] = (Optional[list[RuleConfig]], [])
    top["cameras"] = (Optional[dict[CameraName, camera_file]],
                      Field(None, description="camera name → camera; without it, source: is the one camera"))
    return create_model("ConfigFile", __config__=Section.model_config,
                        __doc__="edge-har configuration file (YAML).", **top)

