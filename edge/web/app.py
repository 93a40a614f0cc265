"""The HTTP side of the service: metrics, health, status, events, live cameras and the page.

``create_app(service, token=...)`` builds the FastAPI application over a
``ServiceView`` (``status()``, ``recent_events(limit)``, ``frames(camera)``,
``registry``); ``serve_http(service, host, port, token)`` runs it with uvicorn
in a background thread of the same process (the engine owns the signals).

Endpoints::

    GET /healthz/live                  200 while the process runs (never needs the token)
    GET /healthz/ready                 200 once the model is compiled and a camera is online, else 503
    GET /metrics                       Prometheus text
    GET /api/status                    service.status()
    GET /api/events?limit=N[&kind=K]   the latest N (1..1000) events, oldest first
    GET /api/clips?camera=&rule=&passed=&since=&limit=
                                       the evidence clips, newest first (``ClipStore.list``)
    GET /clips/{camera}/{path}         a clip's .mp4, .jpg or .vtt; answers Range requests (206, 416)
    GET /cameras/{name}/snapshot.jpg   the latest annotated frame
    GET /cameras/{name}/mjpeg          multipart/x-mixed-replace live stream
    GET /                              the page

A viewer never slows a camera: frames are taken from the camera's FrameHub
(latest only, so a slow viewer skips frames), and each frame is JPEG-encoded
at most once however many viewers watch it (``JpegCache``).

Privacy: every picture endpoint (snapshot, MJPEG, clip files) of a camera whose
``privacy.pictures`` is false answers 403 with the reason, and /api/clips lists
nothing of it.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import math
import re
import socket
import threading
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, runtime_checkable

import anyio
import cv2
import numpy as np
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from edge.evidence.store import ITEM_KEYS, ClipStore
from edge.sinks import EVENT_KINDS, SinkError

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
CAMERA_NAME = re.compile(r"[a-z0-9_-]{1,32}")
MAX_EVENTS = 1000
JPEG_QUALITY = 80
BOUNDARY = "frame"
DELIMITER = f"\r\n--{BOUNDARY}\r\n".encode("ascii")
# A viewer's thread waits this long for a new frame before sending the last one again.
FRAME_WAIT_S = 1.0
# Bounds the threads viewers may hold at once, apart from the pool the other endpoints use.
MAX_VIEWERS = 32
MAX_VIEWERS_PER_CAMERA = 8
# A snapshot waits this long for a frame drawn after it asked (a camera draws only while watched).
SNAPSHOT_WAIT_S = 1.0
MAX_CLIPS = 1000
FILE_CHUNK = 64 * 1024
CLIP_MEDIA_TYPES = {".mp4": "video/mp4", ".jpg": "image/jpeg", ".vtt": "text/vtt; charset=utf-8"}
BYTE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@runtime_checkable
class FrameView(Protocol):
    """A camera's newest annotated frame as viewers read it (``edge.engine.frames.FrameHub``)."""

    @property
    def viewers(self) -> int:
        """Viewers attached now: the lane draws frames only while there is one."""

    def attach(self) -> None: ...

    def detach(self) -> None: ...

    def latest(self) -> tuple[int, np.ndarray] | None: ...

    def wait_newer(self, seq: int, timeout: float | None) -> tuple[int, np.ndarray] | None: ...


@runtime_checkable
class ServiceView(Protocol):
    """What the web side reads of the service (``edge.engine.service.Service``; the tests use a double)."""

    @property
    def registry(self) -> CollectorRegistry | None:
        """The Prometheus registry, or None without prometheus-client (then /metrics is 404)."""

    def status(self) -> dict: ...

    def recent_events(self, limit: int) -> list[dict]: ...

    def frames(self, camera: str) -> FrameView | None: ...


class HttpError(SinkError):
    """The HTTP server cannot start; ``str(error)`` is one line for the user (a ``SinkError``, so the
    CLI reports it like any output that cannot be opened)."""


class JpegCache:
    """JPEGs of a camera's newest frames, encoded on first request and shared by every viewer.

    Keyed by the FrameHub's sequence number: a frame is encoded at most once,
    however many viewers ask for it (the last ``keep`` frames are kept, so a
    viewer a frame behind does not re-encode). Thread-safe; ``encodes`` counts
    encodes.
    """

    def __init__(self, quality: int = JPEG_QUALITY, keep: int = 2) -> None:
        self._params = [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)]
        self._lock = threading.Lock()
        self._jpegs: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._keep = keep
        self.encodes = 0

    def jpeg(self, hub: FrameView, seq: int, image: np.ndarray) -> bytes:
        """JPEG bytes of frame ``seq`` of ``hub`` (``image``: BGR uint8 H×W×3). Raises ``ValueError`` if
        OpenCV cannot encode it."""
        key = (id(hub), seq)
        with self._lock:  # one encoder per camera; its other viewers wait for the bytes
            jpeg = self._jpegs.get(key)
            if jpeg is None:
                ok, encoded = cv2.imencode(".jpg", image, self._params)
                if not ok:
                    raise ValueError("JPEG encoding failed")
                jpeg = self._jpegs[key] = encoded.tobytes()
                self.encodes += 1
                while len(self._jpegs) > self._keep:
                    self._jpegs.popitem(last=False)
            return jpeg


def _jsonable(value):
    """``value`` with NaN/inf as null and NumPy scalars/arrays as plain JSON values."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class _Json(JSONResponse):
    def render(self, content) -> bytes:
        return json.dumps(_jsonable(content), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def token_matches(given: str | None, token: str) -> bool:
    """Constant-time comparison of a presented token with the configured one."""
    return given is not None and hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


def _presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.query_params.get("token")


def camera_configs(service) -> dict:
    """The service's ``CameraConfig`` by name (``service.config.cameras``); empty for a service without
    a config (a test double), whose cameras then all keep pictures and have no clips."""
    config = getattr(service, "config", None)
    return dict(getattr(config, "cameras", None) or {})


def clip_store_of(service) -> ClipStore:
    """The clips of every camera of ``service`` that may keep pictures (none for a service without a config)."""
    config = getattr(service, "config", None)
    return ClipStore.from_config(config) if getattr(config, "cameras", None) else ClipStore({})


def pictures_refused(service, name: str) -> str | None:
    """Why no picture of camera ``name`` may be served (``privacy.pictures`` false), or None."""
    camera = camera_configs(service).get(name)
    if camera is not None and not camera.keeps_pictures:
        return f"privacy.pictures is false for camera {name}"
    return None


def create_app(service: ServiceView, *, token: str | None = None, clips: ClipStore | None = None) -> FastAPI:
    """The FastAPI application over ``service`` (see the module docstring for the endpoints).

    ``token``: when set, every endpoint except ``/healthz/*`` needs
    ``Authorization: Bearer TOKEN`` or ``?token=TOKEN`` (401 otherwise).
    ``clips``: what /api/clips lists and /clips serves; default: the clips of the service's cameras
    that keep pictures (``clip_store_of``).
    The app's ``state`` holds ``jpeg_caches`` (camera → ``JpegCache``) and
    ``stopping`` (a ``threading.Event`` that ends every live stream).
    """
    app = FastAPI(title="edge-har", docs_url=None, redoc_url=None, openapi_url=None,
                  default_response_class=_Json)
    app.state.service = service
    app.state.jpeg_caches = {}
    app.state.stopping = threading.Event()
    caches_lock = threading.Lock()
    viewers: dict[str, int] = {}  # camera → open MJPEG streams
    app.state.viewers = viewers
    limiter: list = []  # created lazily: an anyio limiter belongs to the running event loop
    page = (STATIC / "index.html").read_bytes()
    store = clips if clips is not None else clip_store_of(service)
    app.state.clips = store

    def require_token(request: Request) -> None:
        if token is not None and not token_matches(_presented_token(request), token):
            raise HTTPException(status_code=401, detail="missing or wrong token",
                                headers={"WWW-Authenticate": "Bearer"})

    def refuse_pictures(name: str) -> None:
        reason = pictures_refused(service, name) if CAMERA_NAME.fullmatch(name) else None
        if reason is not None:
            raise HTTPException(status_code=403, detail=reason)

    def hub_of(name: str) -> FrameView:
        refuse_pictures(name)
        # The name is only ever a key into the service's cameras, never part of a path.
        hub = service.frames(name) if CAMERA_NAME.fullmatch(name) else None
        if hub is None:
            raise HTTPException(status_code=404, detail=f"no camera named {name!r}")
        return hub

    def cache_of(name: str) -> JpegCache:
        with caches_lock:
            cache = app.state.jpeg_caches.get(name)
            if cache is None:
                cache = app.state.jpeg_caches[name] = JpegCache()
            return cache

    open_routes = APIRouter()
    routes = APIRouter(dependencies=[Depends(require_token)])

    @open_routes.get("/healthz/live")
    def live():
        return {"live": True}

    @open_routes.get("/healthz/ready")
    def ready():
        is_ready = bool(service.status().get("ready"))
        return _Json({"ready": is_ready}, status_code=200 if is_ready else 503)

    @routes.get("/metrics")
    def metrics():
        registry = service.registry
        if registry is None:
            raise HTTPException(status_code=404, detail="metrics need prometheus-client (pip install prometheus-client)")
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @routes.get("/api/status")
    def api_status():
        return _Json(service.status())  # a response, not a value: FastAPI's encoder rejects NumPy scalars

    @routes.get("/api/events")
    def api_events(limit: int = Query(100, ge=1, le=MAX_EVENTS),
                   kind: str | None = Query(None, pattern="^(" + "|".join(EVENT_KINDS) + ")$")):
        if kind is None:
            return _Json(service.recent_events(limit))
        matching = [event for event in service.recent_events(MAX_EVENTS) if _kind_of(event) == kind]
        return _Json(matching[-limit:])

    @routes.get("/api/clips")
    def api_clips(camera: str | None = Query(None, pattern=f"^{CAMERA_NAME.pattern}$"), rule: str | None = Query(None),
                  passed: bool | None = Query(None), since: str | None = Query(None),
                  limit: int = Query(100, ge=1, le=MAX_CLIPS)):
        if camera is not None and pictures_refused(service, camera):
            return _Json([])
        try:
            items = store.list(camera=camera, rule=rule, passed=passed, since=since, limit=limit)
        except ValueError:
            raise HTTPException(status_code=422, detail=f"since must be Unix seconds or an ISO 8601 time, "
                                                        f"got {since!r}") from None
        return _Json([{key: item.get(key) for key in ITEM_KEYS} for item in items
                      if not pictures_refused(service, str(item.get("camera")))])

    @routes.get("/clips/{camera}/{relative:path}")
    def clip_file(camera: str, relative: str, request: Request):
        refuse_pictures(camera)
        path = store.resolve(camera, relative) if CAMERA_NAME.fullmatch(camera) else None
        media_type = CLIP_MEDIA_TYPES.get(path.suffix.lower()) if path is not None else None
        try:
            if media_type is not None:  # the clip, its snapshot and its labels; not the sidecar
                return ranged_file(path, request.headers.get("range"), media_type)
        except FileNotFoundError:  # deleted by retention since it was resolved
            pass
        raise HTTPException(status_code=404, detail="no such clip file")

    @routes.get("/cameras/{name}/snapshot.jpg")
    def snapshot(name: str):
        hub = hub_of(name)
        latest = hub.latest()
        if hub.viewers == 0:
            # Nobody watches, so the lane has stopped drawing: the latest frame may be old. Ask for a new one.
            with watching(hub):
                latest = hub.wait_newer(latest[0] if latest else -1, SNAPSHOT_WAIT_S) or hub.latest()
        if latest is None:
            raise HTTPException(status_code=503, detail=f"camera {name!r} has no frame yet",
                                headers={"Retry-After": "1"})
        seq, image = latest
        return Response(cache_of(name).jpeg(hub, seq, image), media_type="image/jpeg",
                        headers={"Cache-Control": "no-store", "X-Frame-Seq": str(seq)})

    @routes.get("/cameras/{name}/mjpeg")
    async def mjpeg(name: str):
        hub = hub_of(name)
        cache = cache_of(name)
        with caches_lock:
            if viewers.get(name, 0) >= MAX_VIEWERS_PER_CAMERA:
                raise HTTPException(status_code=503, detail=f"camera {name!r} has too many viewers",
                                    headers={"Retry-After": "5"})
        if not limiter:
            limiter.append(anyio.CapacityLimiter(MAX_VIEWERS))
        stopping = app.state.stopping

        def next_part(seq: int) -> tuple[int, bytes] | None:
            # Runs in a worker thread: waits for a frame newer than the one sent and encodes it (once,
            # for every viewer). A still camera's frame is sent again after FRAME_WAIT_S: a browser
            # shows a part only once the next one arrives, and a repeat tells a gone viewer early.
            newer = hub.wait_newer(seq, FRAME_WAIT_S)
            if newer is None:
                newer = hub.latest() if seq >= 0 else None
                if newer is None:
                    return None
            new_seq, image = newer
            jpeg = cache.jpeg(hub, new_seq, image)
            head = (f"Content-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n"
                    f"X-Frame-Seq: {new_seq}\r\n\r\n").encode("ascii")
            return new_seq, head + jpeg + DELIMITER

        async def parts():
            seq = -1
            # Counted here, not in the handler: a viewer gone before its stream starts never runs `finally`.
            with caches_lock:
                viewers[name] = viewers.get(name, 0) + 1
            hub.attach()
            try:
                yield DELIMITER
                while not stopping.is_set():
                    part = await anyio.to_thread.run_sync(next_part, seq, limiter=limiter[0],
                                                          abandon_on_cancel=True)
                    if part is not None:
                        seq, body = part
                        yield body  # a slow viewer waits here; the camera never does
            finally:
                hub.detach()
                with caches_lock:
                    viewers[name] -= 1

        return StreamingResponse(parts(), media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @routes.get("/", response_class=HTMLResponse)
    def index():
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    app.include_router(open_routes)
    app.include_router(routes)
    return app


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one range ``(first, last)`` (inclusive) of a ``Range`` header over ``size`` bytes; None to send
    the whole file (no header, or one this server ignores: other units, several ranges, bad syntax).
    Raises ``ValueError`` when the range cannot be satisfied (416)."""
    match = BYTE_RANGE.fullmatch(header.strip()) if header else None
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":  # the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise ValueError("empty suffix range")
        return max(0, size - length), size - 1
    if last != "" and int(last) < int(first):
        return None  # invalid: ignored, as RFC 9110 says
    if int(first) >= size:
        raise ValueError("range starts after the end")
    return int(first), size - 1 if last == "" else min(int(last), size - 1)


def ranged_file(path: Path, range_header: str | None, media_type: str) -> Response:
    """``path`` whole (200) or the one byte range asked for (206 with Content-Range; 416 when it cannot be
    satisfied), so that browsers can seek in a video."""
    size = path.stat().st_size
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, no-cache"}
    try:
        wanted = byte_range(range_header, size)
    except ValueError:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    first, last = wanted if wanted is not None else (0, size - 1)
    headers["Content-Length"] = str(max(0, last - first + 1))
    if wanted is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"

    def chunks():
        with open(path, "rb") as file:
            file.seek(first)
            remaining = last - first + 1
            while remaining > 0:
                chunk = file.read(min(FILE_CHUNK, remaining))
                if not chunk:
                    return  # the file shrank meanwhile (retention): the client sees a short body
                remaining -= len(chunk)
                yield chunk

    return StreamingResponse(chunks(), status_code=206 if wanted is not None else 200, media_type=media_type,
                             headers=headers)


@contextmanager
def watching(hub: FrameView):
    """A viewer watches ``hub`` meanwhile (the lane draws annotated frames only then)."""
    hub.attach()
    try:
        yield hub
    finally:
        hub.detach()


def _kind_of(event: dict) -> str:
    """An events.jsonl object's kind: its ``event`` key, or ``prediction`` for a prediction line."""
    return event.get("event") or "prediction"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers (the engine owns SIGINT/SIGTERM), telling when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = threading.Event()

    @contextmanager
    def capture_signals(self):
        yield

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)
        self.listening.set()


class HttpServer:
    """The app served by uvicorn in a background thread. ``start()`` / ``stop()``; ``url`` once started."""

    def __init__(self, service: ServiceView, host: str = "127.0.0.1", port: int = 8080, token: str | None = None,
                 *, start_timeout_s: float = 30.0, stop_timeout_s: float = 5.0) -> None:
        self.service, self.host, self.port, self.token = service, host, port, token or None
        self.start_timeout_s, self.stop_timeout_s = start_timeout_s, stop_timeout_s
        self.app: FastAPI | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> "HttpServer":
        """Bind and start serving; returns once the server listens.

        Raises ``HttpError`` (one line) when the address is not loopback and
        there is no token, or the port cannot be bound (e.g. in use).
        """
        if self._thread is not None:
            return self  # already serving
        if not is_loopback(self.host) and not self.token:
            raise HttpError(f"http: refusing to listen on {self.host}: an address other than loopback "
                            "needs http.token (or set http.host: 127.0.0.1)")
        listener = self._bind()
        self.port = listener.getsockname()[1]
        self.app = create_app(self.service, token=self.token)
        # log_config=None: uvicorn's loggers propagate to the engine's logging instead of configuring their own.
        config = uvicorn.Config(self.app, lifespan="off", log_config=None, log_level="warning", access_log=False,
                                timeout_graceful_shutdown=max(1, int(self.stop_timeout_s)),
                                server_header=False)
        self._server = _Server(config)
        self._thread = threading.Thread(target=self._run, args=(listener,), name="edge-har-http", daemon=True)
        self._thread.start()
        if not self._server.listening.wait(self.start_timeout_s) or self._failure is not None:
            self.stop()
            self._thread = None
            raise HttpError(f"http: server on {self.url} did not start: {self._failure or 'timed out'}")
        log.info("http: serving on %s", self.url)
        return self

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host.strip("[]"), self.port))
            listener.listen(128)
        except OSError as error:
            listener.close()
            reason = error.strerror or str(error)
            raise HttpError(f"http: cannot listen on {self.host}:{self.port}: {reason}") from None
        listener.setblocking(False)
        return listener

    def _run(self, listener: socket.socket) -> None:
        try:
            self._server.run(sockets=[listener])
        except BaseException as error:  # noqa: BLE001  (SystemExit from uvicorn's start-up too)
            self._failure = error
            log.error("http: server stopped: %s", error)
        finally:
            listener.close()
            self._server.listening.set()

    def stop(self) -> None:
        """End live streams, stop the server and join its thread (bounded); idempotent."""
        if self.app is not None:
            self.app.state.stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(self.stop_timeout_s + 5.0)
            if self._thread.is_alive():
                log.warning("http: server thread still running after %.0f s", self.stop_timeout_s + 5.0)

    def __enter__(self) -> "HttpServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_http(service: ServiceView, host: str = "127.0.0.1", port: int = 8080, token: str | None = None) -> HttpServer:
    """A not-yet-started ``HttpServer`` for ``service``; call ``start()`` (raises ``HttpError``) and ``stop()``."""
    return HttpServer(service, host, port, token)
