"""The HTTP API over a double of the Service: status codes, JSON shapes, tokens, metrics, MJPEG."""

from __future__ import annotations

import json
import math
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

import edge
from edge.events import from_json_dict
from edge.sinks import SinkError
from edge.sinks.prometheus import PrometheusSink
from edge.web import app as web
from edge.web.app import HttpError, create_app, is_loopback, serve_http
from support_web import (MjpegReader, ServiceDouble, check_record, decode_jpeg, free_port, gap_record, raw_get,
                         prediction_record, psnr, scene, service_with_metrics, serving)

TOKEN = "s3cret-token"
DESIGN_METRICS = {  # DESIGN.md's names → the labels each sample carries
    "edgehar_camera_up": {"camera"},
    "edgehar_camera_fps": {"camera"},
    "edgehar_clips_total": {"camera"},
    "edgehar_skipped_clips_total": {"camera"},
    "edgehar_reconnects_total": {"camera"},
    "edgehar_gated_clips_total": {"camera"},
    "edgehar_inference_seconds_bucket": {"camera", "le"},
    "edgehar_queue_wait_seconds_bucket": {"camera", "le"},
    "edgehar_checks_total": {"camera", "rule", "passed"},
    "edgehar_build_info": {"version", "model", "device", "precision"},
}


@pytest.fixture
def service():
    service, _ = service_with_metrics(("sink", "kitchen"))
    return service


@pytest.fixture
def client(service):
    with TestClient(create_app(service)) as client:
        yield client


def one_line(error) -> str:
    text = str(error)
    assert "\n" not in text and text
    return text


# -- the service as the web side reads it ------------------------------------------------------

def test_the_service_and_its_double_are_service_views():
    from edge.config import embedded_default_mapping, load_config
    from edge.engine.frames import FrameHub
    from edge.engine.service import Service

    real = Service(load_config(None, [], base=embedded_default_mapping()), mode="serve")
    for service in (real, ServiceDouble()):
        assert isinstance(service, web.ServiceView)
    for hub in (FrameHub(), ServiceDouble().frames("sink")):
        assert isinstance(hub, web.FrameView)


def test_metrics_without_a_registry_is_not_found():
    service = ServiceDouble()
    service.registry = None  # the service without prometheus-client
    with TestClient(create_app(service)) as client:
        response = client.get("/metrics")
    assert response.status_code == 404 and "prometheus-client" in response.json()["detail"]


# -- JSON endpoints -----------------------------------------------------------------------------

def test_status_is_the_services_status(service, client):
    record = prediction_record("sink", "washing hands", 0.82)
    service.emit("prediction", "sink", record)
    service.cameras["kitchen"].update(state="reconnecting", reason="stream lost", fps=None)
    response = client.get("/api/status")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body == json.loads(json.dumps(service.status()))
    assert list(body["cameras"]) == ["sink", "kitchen"]
    assert body["cameras"]["sink"]["prediction"]["label"] == "washing hands"
    assert body["cameras"]["kitchen"]["state"] == "reconnecting"
    for camera in body["cameras"].values():
        assert {"state", "fps", "clips_per_s", "skipped_clips", "prediction", "activity"} <= set(camera)


def test_status_with_non_finite_numbers_is_still_json(service, client):
    service.cameras["sink"].update(fps=float("nan"), clips_per_s=np.float32(1.25), clips=np.int64(7))
    body = client.get("/api/status").json()
    assert body["cameras"]["sink"]["fps"] is None
    assert body["cameras"]["sink"]["clips_per_s"] == 1.25
    assert body["cameras"]["sink"]["clips"] == 7


def test_health(service, client):
    assert client.get("/healthz/live").status_code == 200
    assert client.get("/healthz/ready").status_code == 200
    service.ready = False
    response = client.get("/healthz/ready")
    assert response.status_code == 503
    assert response.json() == {"ready": False}


def test_events_are_the_latest_records_oldest_first(service, client):
    emitted = [prediction_record("sink", "washing hands", 0.5, clip_index=index) for index in range(5)]
    for record in emitted:
        service.emit("prediction", "sink", record)
    service.emit("check", "kitchen", check_record("kitchen", "no-smoking", False))
    body = client.get("/api/events", params={"limit": 3}).json()
    assert body == json.loads(json.dumps(emitted[3:] + [check_record("kitchen", "no-smoking", False)]))
    assert len(client.get("/api/events").json()) == 6
    checks = client.get("/api/events", params={"kind": "check", "limit": 10}).json()
    assert [check["rule"] for check in checks] == ["no-smoking"]
    predictions = client.get("/api/events", params={"kind": "prediction", "limit": 2}).json()
    assert [record["clip_index"] for record in predictions] == [3, 4]


@pytest.mark.parametrize("query", ["limit=0", "limit=-1", "limit=1001", "limit=99999999999999999999999",
                                   "limit=abc", "limit=1.5", "limit=", "kind=bogus", "kind=check%27--"])
def test_bad_event_queries_are_client_errors(client, query):
    response = client.get(f"/api/events?{query}")
    assert response.status_code in (400, 422), response.text


def test_event_limit_bounds_are_inclusive(service, client):
    for index in range(3):
        service.emit("gap", "sink", gap_record("sink"))
    assert len(client.get("/api/events?limit=1").json()) == 1
    assert len(client.get("/api/events?limit=1000").json()) == 3


def test_page_is_served(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/api/status" in response.text and "mjpeg" in response.text


# -- tokens --------------------------------------------------------------------------------------

PROTECTED = ["/", "/metrics", "/api/status", "/api/events", "/cameras/sink/snapshot.jpg", "/cameras/sink/mjpeg"]


@pytest.fixture
def token_client(service):
    service.hubs["sink"].on_attach = lambda hub: hub.publish(scene(0))  # the lane draws for a viewer
    with TestClient(create_app(service, token=TOKEN)) as client:
        yield client


@pytest.mark.parametrize("path", PROTECTED)
def test_every_endpoint_but_health_needs_the_token(token_client, path):
    assert token_client.get(path).status_code == 401
    assert token_client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert token_client.get(path, params={"token": TOKEN[:-1]}).status_code == 401
    assert token_client.get(path, params={"token": ""}).status_code == 401
    assert token_client.get(path, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert token_client.get(path, headers={"Authorization": TOKEN}).status_code == 401


@pytest.mark.parametrize("path", [path for path in PROTECTED if not path.endswith("mjpeg")])
def test_the_right_token_opens_every_endpoint(token_client, path):
    assert token_client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert token_client.get(path, params={"token": TOKEN}).status_code == 200
    assert token_client.get(path, headers={"authorization": f"bearer {TOKEN}"}).status_code == 200


def test_health_is_open_with_a_token(token_client):
    assert token_client.get("/healthz/live").status_code == 200
    assert token_client.get("/healthz/ready").status_code == 200


def test_a_token_request_gets_a_bearer_challenge(token_client):
    response = token_client.get("/api/status")
    assert response.headers["www-authenticate"] == "Bearer"
    assert TOKEN not in response.text


def test_tokens_are_compared_in_constant_time(monkeypatch, token_client):
    compared = []
    real = web.hmac.compare_digest
    monkeypatch.setattr(web.hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    assert token_client.get("/api/status", params={"token": TOKEN}).status_code == 200
    assert compared == [(TOKEN.encode(), TOKEN.encode())]


def test_mjpeg_with_the_token_streams(service):
    service.hubs["sink"].publish(scene(3))
    with serving(service, token=TOKEN) as server, httpx.Client(timeout=10) as http:
        with http.stream("GET", f"{server.url}/cameras/sink/mjpeg", params={"token": TOKEN}) as response:
            assert response.status_code == 200
            headers, body = MjpegReader(response).next_part()
            assert headers["x-frame-seq"] == "1"
            decode_jpeg(body)


# -- binding ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "edge-box.local", ""])
def test_listening_beyond_loopback_needs_a_token(service, host):
    server = serve_http(service, host, free_port(), None)
    with pytest.raises(HttpError) as raised:
        server.start()
    assert "http.token" in one_line(raised.value)
    assert server._thread is None  # refused before binding anything


def test_loopback_addresses():
    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.53", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "10.0.0.1", "example.com", "", "127.0.0.1.nip.io"]))


def test_a_port_in_use_is_a_one_line_error(service):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(HttpError) as raised:
            serve_http(service, "127.0.0.1", port, None).start()
    text = one_line(raised.value)
    assert f"127.0.0.1:{port}" in text and "in use" in text
    assert isinstance(raised.value, SinkError)  # the CLI's one-line error path


def test_serve_and_stop_on_loopback(service):
    with serving(service) as server:
        assert server.port > 0
        assert server.start() is server  # already serving: start() again is harmless
        assert httpx.get(f"{server.url}/healthz/live", timeout=10).status_code == 200
        thread = server._thread
    assert not thread.is_alive()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.url}/healthz/live", timeout=5)


# -- cameras ---------------------------------------------------------------------------------------

def test_snapshot_asks_the_lane_for_a_fresh_frame(service, client):
    hub = service.hubs["sink"]
    stale, fresh = scene(1), scene(2)
    hub.publish(stale)
    drawn = []
    hub.on_attach = lambda hub: drawn.append(hub.publish(fresh))  # the lane draws once someone watches
    response = client.get("/cameras/sink/snapshot.jpg")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["x-frame-seq"] == str(drawn[0])
    image = decode_jpeg(response.content)
    assert psnr(image, fresh) > 30 and psnr(image, fresh) > psnr(image, stale) + 5
    assert hub.viewers == 0  # attached for the snapshot only


def test_snapshot_while_watched_is_the_latest_frame_at_once(service, client):
    hub = service.hubs["sink"]
    hub.attach()  # a viewer watches: the lane keeps drawing
    seq = hub.publish(scene(3))
    response = client.get("/cameras/sink/snapshot.jpg")
    assert response.headers["x-frame-seq"] == str(seq)
    assert psnr(decode_jpeg(response.content), scene(3)) > 30
    assert (hub.attaches, hub.viewers) == (1, 1)


def test_snapshot_of_a_camera_that_draws_nothing(service, client):
    assert client.get("/cameras/kitchen/snapshot.jpg").status_code == 503  # no frame yet
    seq = service.hubs["kitchen"].publish(scene(4))  # e.g. offline now: its last frame is all there is
    response = client.get("/cameras/kitchen/snapshot.jpg")
    assert response.status_code == 200 and response.headers["x-frame-seq"] == str(seq)


@pytest.mark.parametrize("path", ["/cameras/nope/snapshot.jpg", "/cameras/nope/mjpeg", "/cameras/Sink/mjpeg",
                                  "/cameras/sink/other", "/cameras//snapshot.jpg"])
def test_unknown_camera_is_404(client, path):
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("raw_path", ["/cameras/..%2f..%2fetc/snapshot.jpg", "/cameras/..%2F..%2Fetc%2Fpasswd/mjpeg",
                                      "/cameras/../../etc/passwd", "/cameras/%2e%2e/snapshot.jpg",
                                      "/cameras/sink%00/snapshot.jpg", "/static/../app.py", "/../../etc/passwd",
                                      "/cameras/..%5c..%5cetc/snapshot.jpg"])
def test_path_traversal_never_reads_a_file(service, raw_path):
    service.hubs["sink"].publish(scene(0))
    with serving(service) as server:
        status, data = raw_get(server.url, raw_path)
    assert status in (400, 404), data[:200]
    assert b"root:" not in data and b"def create_app" not in data


def read_until_seq(reader: MjpegReader, seq: int, max_parts: int = 20):
    """Parts up to and including the one showing frame ``seq`` (earlier ones may repeat a still frame)."""
    parts = []
    for _ in range(max_parts):
        headers, body = reader.next_part()
        parts.append((int(headers["x-frame-seq"]), body))
        if parts[-1][0] == seq:
            return parts
    raise AssertionError(f"frame {seq} never came; got {[part[0] for part in parts]}")


def test_mjpeg_streams_the_published_frames(service):
    hub = service.hubs["kitchen"]
    first, second = scene(10), scene(11)
    first_seq = hub.publish(first)
    with serving(service) as server, httpx.Client(timeout=10) as http:
        with http.stream("GET", f"{server.url}/cameras/kitchen/mjpeg") as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "multipart/x-mixed-replace; boundary=frame"
            reader = MjpegReader(response)
            headers, body = reader.next_part()
            assert headers["content-type"] == "image/jpeg"
            assert int(headers["x-frame-seq"]) == first_seq
            image = decode_jpeg(body)
            assert psnr(image, first) > 30 and psnr(image, first) > psnr(image, second) + 5
            second_seq = hub.publish(second)
            parts = read_until_seq(reader, second_seq)
            assert all(seq == first_seq for seq, _ in parts[:-1])
            image = decode_jpeg(parts[-1][1])
            assert psnr(image, second) > 30 and psnr(image, second) > psnr(image, first) + 5
            assert hub.viewers == 1  # the lane draws while the stream is open
        assert hub.wait_viewers(0)  # and stops once it is closed


def test_one_jpeg_encode_per_frame_for_three_viewers(service, monkeypatch):
    encodes = []
    real_imencode = cv2.imencode
    monkeypatch.setattr(web.cv2, "imencode", lambda *args: encodes.append(1) or real_imencode(*args))
    hub = service.hubs["sink"]
    seqs = [hub.publish(scene(20))]
    with serving(service) as server, httpx.Client(timeout=10) as http:
        url = f"{server.url}/cameras/sink/mjpeg"
        with http.stream("GET", url) as a, http.stream("GET", url) as b, http.stream("GET", url) as c:
            readers = [MjpegReader(response) for response in (a, b, c)]
            frames = {}
            for index in range(1, 4):
                for reader in readers:
                    seq, body = read_until_seq(reader, seqs[-1])[-1]
                    frames.setdefault(seq, []).append(body)
                seqs.append(hub.publish(scene(20 + index)))
            for reader in readers:
                read_until_seq(reader, seqs[-1])
    assert sorted(frames) == seqs[:-1]
    assert all(len(set(bodies)) == 1 and len(bodies) == 3 for bodies in frames.values())
    assert len(encodes) == len(seqs)  # one per frame, not one per frame per viewer


def test_a_slow_viewer_never_holds_back_a_camera(service):
    hub = service.hubs["sink"]
    first = hub.publish(scene(0))
    # Noise does not compress: ~1.5 MB per JPEG, so the viewer that reads nothing fills its socket
    # buffers within a few frames and its sender blocks from then on.
    big = [np.random.default_rng(seed).integers(0, 256, (720, 1280, 3), dtype=np.uint8) for seed in range(4)]
    count = 40
    with serving(service) as server, httpx.Client(timeout=10) as http:
        url = f"{server.url}/cameras/sink/mjpeg"
        with http.stream("GET", url) as slow, http.stream("GET", url) as fast:
            assert slow.status_code == 200  # headers read; its body is left unread
            fast_reader = MjpegReader(fast)
            read_until_seq(fast_reader, first)
            for index in range(count):
                seq = hub.publish(big[index % 4])  # the camera publishes; nothing makes it wait
                # The other viewer gets every frame while the slow one is stuck.
                parts = read_until_seq(fast_reader, seq)
                assert len(decode_jpeg(parts[-1][1])) == 720
            last = hub.publish(scene(99))
            assert hub.published == count + 2
            assert http.get(f"{server.url}/api/status").status_code == 200
            slow_parts = read_until_seq(MjpegReader(slow), last, max_parts=count + 2)
            assert len(slow_parts) < count  # the slow viewer skipped what it was too slow for
            assert [seq for seq, _ in slow_parts] == sorted(seq for seq, _ in slow_parts)
            assert psnr(decode_jpeg(slow_parts[-1][1]), scene(99)) > 30


def test_too_many_viewers_of_one_camera_are_refused(service, monkeypatch):
    monkeypatch.setattr(web, "MAX_VIEWERS_PER_CAMERA", 2)
    service.hubs["sink"].publish(scene(0))
    with serving(service) as server, httpx.Client(timeout=10) as http:
        url = f"{server.url}/cameras/sink/mjpeg"
        with http.stream("GET", url) as a, http.stream("GET", url) as b:
            readers = [MjpegReader(a), MjpegReader(b)]  # kept: a dropped reader closes its stream
            for reader in readers:
                reader.next_part()
            assert http.get(url).status_code == 503
            assert http.get(f"{server.url}/cameras/kitchen/snapshot.jpg").status_code == 503  # no frame, not refused
        # Viewers that left free their places (the server sees the close on its next write, within ~1 s).
        deadline = time.monotonic() + 20
        while server.app.state.viewers["sink"] and time.monotonic() < deadline:
            time.sleep(0.05)  # waiting for the server to observe a TCP close; bounded
        assert server.app.state.viewers["sink"] == 0
        with http.stream("GET", url) as again:
            assert again.status_code == 200


def test_stopping_the_server_ends_live_streams(service):
    service.hubs["sink"].publish(scene(0))
    server = serve_http(service, "127.0.0.1", 0, None).start()
    try:
        with httpx.Client(timeout=10) as http, http.stream("GET", f"{server.url}/cameras/sink/mjpeg") as response:
            reader = MjpegReader(response)
            reader.next_part()
            server.stop()
            assert not server._thread.is_alive()
            with pytest.raises((StopIteration, httpx.HTTPError)):
                for _ in range(100):  # at most the parts already buffered, then the end
                    reader.next_part()
    finally:
        server.stop()


# -- metrics ---------------------------------------------------------------------------------------

def emit_a_day(service, sink):
    """Events of two cameras with known counts (the oracle for the metrics test)."""
    for index in range(3):
        service.emit("prediction", "sink", prediction_record("sink", "washing hands", 0.9, clip_index=index,
                                                             infer_ms=40.0 + index))
    service.emit("prediction", "sink", prediction_record("sink", None, None, clip_index=3, gated=True))
    service.emit("prediction", "kitchen", prediction_record("kitchen", "smoking", 0.7, infer_ms=300.0))
    service.emit("check", "sink", check_record("sink", "wash-20s", False))
    service.emit("check", "sink", check_record("sink", "wash-20s", False))
    service.emit("check", "sink", check_record("sink", "wash-20s", True))
    service.emit("check", "kitchen", check_record("kitchen", "no-smoking", None))
    service.emit("gap", "kitchen", gap_record("kitchen"))
    service.emit("status", "kitchen", {"event": "status", "camera": "kitchen", "state": "reconnecting"})
    sink.observe_queue_wait("sink", 0.02)
    sink.observe_queue_wait("kitchen", 0.5)
    service.cameras["kitchen"].update(state="reconnecting", fps=0.0, skipped_clips=4)
    service.cameras["sink"].update(fps=24.5)


def samples_of(text: str) -> dict:
    """{(sample name, frozenset of label items): value} from Prometheus text."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def test_metrics_have_every_design_name_with_its_labels(service, client):
    emit_a_day(service, service.sinks[0])
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = samples_of(response.text)
    names = {name for name, _ in samples}
    for name, labels in DESIGN_METRICS.items():
        assert name in names, name
        assert all(set(dict(items)) == labels for sample, items in samples if sample == name), name
    assert value(samples, "edgehar_camera_up", camera="sink") == 1
    assert value(samples, "edgehar_camera_up", camera="kitchen") == 0
    assert value(samples, "edgehar_camera_fps", camera="sink") == 24.5
    assert value(samples, "edgehar_clips_total", camera="sink") == 4
    assert value(samples, "edgehar_gated_clips_total", camera="sink") == 1
    assert value(samples, "edgehar_clips_total", camera="kitchen") == 1
    assert value(samples, "edgehar_skipped_clips_total", camera="kitchen") == 4
    assert value(samples, "edgehar_reconnects_total", camera="kitchen") == 1
    assert value(samples, "edgehar_reconnects_total", camera="sink") == 0
    assert value(samples, "edgehar_checks_total", camera="sink", rule="wash-20s", passed="false") == 2
    assert value(samples, "edgehar_checks_total", camera="sink", rule="wash-20s", passed="true") == 1
    assert value(samples, "edgehar_checks_total", camera="kitchen", rule="no-smoking", passed="null") == 1
    # Inference: three sink clips of 40, 41, 42 ms (the gated clip was not inferred), in seconds.
    assert value(samples, "edgehar_inference_seconds_count", camera="sink") == 3
    assert math.isclose(value(samples, "edgehar_inference_seconds_sum", camera="sink"), 0.123)
    assert value(samples, "edgehar_inference_seconds_bucket", camera="sink", le="0.05") == 3
    assert value(samples, "edgehar_inference_seconds_bucket", camera="kitchen", le="0.25") == 0
    assert value(samples, "edgehar_inference_seconds_bucket", camera="kitchen", le="0.5") == 1
    assert value(samples, "edgehar_queue_wait_seconds_count", camera="kitchen") == 1
    assert math.isclose(value(samples, "edgehar_queue_wait_seconds_sum", camera="sink"), 0.02)
    build = [dict(items) for name, items in samples if name == "edgehar_build_info"]
    assert build == [{"version": edge.__version__, "model": "demo-r3d", "device": "CPU", "precision": "f32"}]


def test_every_camera_is_listed_before_its_first_clip(service, client):
    samples = samples_of(client.get("/metrics").text)
    for name in ("edgehar_clips_total", "edgehar_reconnects_total", "edgehar_camera_up", "edgehar_gated_clips_total"):
        assert {dict(items)["camera"] for sample, items in samples if sample == name} == {"sink", "kitchen"}


def test_two_services_have_two_registries():
    one, two = ServiceDouble(("a",)), ServiceDouble(("a",))
    sink_one = PrometheusSink(one.registry, status=one.status, cameras=["a"])
    PrometheusSink(two.registry, status=two.status, cameras=["a"])
    sink_one.handle(from_json_dict(prediction_record("a", "x", 0.5)))
    assert sink_one.clips.labels(camera="a")._value.get() == 1
    assert samples_of(create_and_scrape(two))[("edgehar_clips_total", frozenset({("camera", "a")}))] == 0
    with pytest.raises(ValueError):  # the same names twice on one registry is a programming error
        PrometheusSink(one.registry, cameras=["a"])


def create_and_scrape(service) -> str:
    with TestClient(create_app(service)) as client:
        return client.get("/metrics").text


def test_label_values_stay_bounded():
    registry = CollectorRegistry()
    sink = PrometheusSink(registry, cameras=["sink"], rules=["wash-20s"])
    for index in range(50):
        sink.handle(from_json_dict(prediction_record(f"intruder{index}", "x", 0.5)))
        sink.handle(from_json_dict(check_record("sink", f"rule{index}", True)))
    samples = samples_of(generate(registry))
    cameras = {dict(items)["camera"] for name, items in samples if name == "edgehar_clips_total"}
    rules = {dict(items)["rule"] for name, items in samples if name == "edgehar_checks_total"}
    assert cameras == {"sink", "other"} and rules == {"other"}
    assert value(samples, "edgehar_clips_total", camera="other") == 50


def generate(registry) -> str:
    from prometheus_client import generate_latest
    return generate_latest(registry).decode()


def test_undeclared_labels_are_capped():
    registry = CollectorRegistry()
    sink = PrometheusSink(registry)  # nothing declared: the first 64 values, then "other"
    for index in range(100):
        sink.handle(from_json_dict(gap_record(f"cam{index}")))
    cameras = {dict(items)["camera"] for name, items in samples_of(generate(registry))
               if name == "edgehar_reconnects_total"}
    assert len(cameras) == 65 and "other" in cameras


# -- the container's health check ---------------------------------------------------------------------

def dockerfile_healthcheck() -> list[str]:
    text = (Path(__file__).resolve().parents[1] / "deploy" / "Dockerfile").read_text()
    match = re.search(r"^HEALTHCHECK .*?CMD (\[.*?\])\s*$", text.replace("\\\n", " "), re.M)
    assert match, "no HEALTHCHECK CMD in deploy/Dockerfile"
    return json.loads(match.group(1))


def test_the_dockerfile_health_check_follows_readiness(service):
    command = dockerfile_healthcheck()
    assert command[:2] == ["python", "-c"] and "/healthz/ready" in command[2]
    with serving(service, token=TOKEN) as server:  # the token does not guard health
        probe = [sys.executable, "-c", command[2].replace("127.0.0.1:8080", f"127.0.0.1:{server.port}")]
        assert subprocess.run(probe, capture_output=True, timeout=60).returncode == 0
        service.ready = False
        assert subprocess.run(probe, capture_output=True, timeout=60).returncode != 0


def test_the_sink_takes_cameras_rules_and_status_from_the_service():
    from types import SimpleNamespace

    service = ServiceDouble(("sink", "yard"))
    service.config = SimpleNamespace(cameras={"sink": object(), "yard": object()},
                                     rules=[SimpleNamespace(name="wash-20s")])
    sink = PrometheusSink(service.registry, service=service)
    sink.handle(from_json_dict(check_record("yard", "wash-20s", False)))
    sink.handle(from_json_dict(check_record("yard", "made-up", True)))
    sink.handle(from_json_dict(gap_record("nowhere")))
    samples = samples_of(generate(service.registry))
    assert {dict(items)["camera"] for name, items in samples if name == "edgehar_camera_up"} == {"sink", "yard"}
    assert {dict(items)["camera"] for name, items in samples if name == "edgehar_reconnects_total"} == \
        {"sink", "yard", "other"}
    assert value(samples, "edgehar_checks_total", camera="yard", rule="wash-20s", passed="false") == 1
    assert value(samples, "edgehar_checks_total", camera="yard", rule="other", passed="true") == 1
