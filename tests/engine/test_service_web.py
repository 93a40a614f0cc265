"""The live page, the API and the metrics of a real `serve` with two cameras, in a real browser.

Two file cameras (scripted colour videos and the colour test model, so labels and checks are
known: the kitchen camera sees green = smoking, which the `no-smoking` rule forbids) run in
`serve` mode with HTTP on a free 127.0.0.1 port. Oracles: the events the service wrote to
events.jsonl, prometheus-client's own parser and a real Prometheus server for /metrics, cv2 for
the JPEG frames, and headless Chromium for what a person sees.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.request

import cv2
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support_activities import ACTIVITIES_YAML, colour_model_xml, script_video  # noqa: F401  (fixtures)
from support_web import CHROMIUM, PROMETHEUS, HeadlessChromium, PrometheusServer, free_port

from edge.config import config_from_mapping
from edge.engine.service import Service
from edge.engine.signals import StopFlag

RULES = [{"name": "no-smoking", "kind": "forbidden", "activity": "smoking"}]


class Finished:
    """A sink: set once every camera reported `finished` (the files ended; serve stays up)."""

    def __init__(self, cameras):
        self.cameras = set(cameras)
        self.done = set()
        self.event = threading.Event()

    def handle(self, event):
        if event.kind == "status" and event.state == "finished":
            self.done.add(event.camera)
            if self.done >= self.cameras:
                self.event.set()

    def close(self):
        pass


@pytest.fixture
def served(tmp_path, colour_model_xml, script_video, compiled_cache):
    """`serve` with cameras sink (red: washing hands) and kitchen (green: smoking), HTTP on a free port."""
    port = free_port()
    config = config_from_mapping({
        "model": {"path": str(colour_model_xml)},
        "inference": {"cache_dir": str(compiled_cache)},
        "output": {"events": str(tmp_path / "{camera}.jsonl"), "rotate": "none", "progress": False},
        "activities": ACTIVITIES_YAML,
        "rules": RULES,
        "http": {"port": port},
        "cameras": {"sink": {"source": str(script_video([("grey", 0.64), ("red", 2.56)]))},
                    "kitchen": {"source": str(script_video([("grey", 0.64), ("green", 2.56)]))}},
    })
    stop = StopFlag()
    service = Service(config, mode="serve", stop=stop)
    finished = Finished(config.cameras)
    service.subscribe(finished)
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("run", service.run()))
    worker.start()
    try:
        assert finished.event.wait(120), "the cameras did not finish their files"
        yield service, f"http://127.0.0.1:{port}", tmp_path
    finally:
        stop.request()
        worker.join(60)
    assert result["run"].exit_code == 0


def get(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers.get("content-type"), response.read()


def test_api_status_events_snapshot_and_metrics_of_a_real_serve(served):
    service, base, out = served
    status, _, body = get(base + "/api/status")
    state = json.loads(body)
    assert status == 200 and set(state["cameras"]) == {"sink", "kitchen"}
    sink_lines = [json.loads(line) for line in (out / "sink.jsonl").read_text().splitlines()]
    last_prediction = [line for line in sink_lines if "event" not in line][-1]
    assert state["cameras"]["sink"]["prediction"] == last_prediction
    assert state["cameras"]["sink"]["prediction"]["label"] == "washing hands"
    assert state["cameras"]["kitchen"]["state"] == "finished"

    _, _, body = get(base + "/api/events?limit=50")
    recent = json.loads(body)
    kitchen_lines = [json.loads(line) for line in (out / "kitchen.jsonl").read_text().splitlines()]
    failed = [line for line in kitchen_lines if line.get("event") == "check" and line["passed"] is False]
    assert failed and all(check in recent for check in failed)

    status, kind, jpeg = get(base + "/cameras/sink/snapshot.jpg")
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert status == 200 and kind == "image/jpeg" and image is not None and image.shape[:2] == (120, 160)
    # the red scene, with the overlay band at the top left
    assert image[100:, 40:].reshape(-1, 3).mean(axis=0)[2] > 120

    _, _, text = get(base + "/metrics")
    families = {family.name: family for family in text_string_to_metric_families(text.decode())}
    clips = {s.labels["camera"]: s.value for s in families["edgehar_clips"].samples if s.name.endswith("_total")}
    assert clips == {"sink": float(len([l for l in sink_lines if "event" not in l])),
                     "kitchen": float(len([l for l in kitchen_lines if "event" not in l]))}
    checks = [s for s in families["edgehar_checks"].samples
              if s.name.endswith("_total") and s.labels["rule"] == "no-smoking" and s.labels["passed"] == "false"]
    assert checks and checks[0].labels["camera"] == "kitchen" and checks[0].value == len(failed)


@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus is not installed (apt-get install prometheus)")
def test_a_real_prometheus_scrapes_every_camera(served):
    _, base, _ = served
    prometheus = PrometheusServer([base.removeprefix("http://")]).start()
    try:
        result = prometheus.wait_for("edgehar_clips_total", lambda rows: len(rows) == 2)
        assert {row["metric"]["camera"] for row in result} == {"sink", "kitchen"}
    finally:
        prometheus.stop()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_page_shows_both_cameras_live_and_the_failed_check(served, tmp_path):
    _, base, _ = served
    rendered = ("document.querySelectorAll('.camera').length === 2 && "
                "Array.from(document.querySelectorAll('.camera img')).every(img => img.naturalWidth > 0) && "
                "document.querySelectorAll('#checks .check.failed').length >= 1")
    with HeadlessChromium() as browser:
        browser.open(base + "/").wait_for(rendered, timeout_s=60)
        dom = browser.dom()
        for camera, label in (("sink", "washing hands"), ("kitchen", "smoking")):
            match = re.search(rf'<article class="camera" id="camera-{camera}".*?</article>', dom, re.S)
            assert match, camera
            assert f'src="/cameras/{camera}/mjpeg"' in match.group(0) and label in match.group(0)
        # the colour test model is not the untrained demo model: the notice must not be visible
        assert browser.evaluate("getComputedStyle(document.getElementById('untrained')).display") == "none"
        failed = re.findall(r'<li class="check failed" data-rule="([\w-]+)">', dom)
        assert failed and set(failed) == {"no-smoking"}
        shot = browser.screenshot(tmp_path / "page.png")
    image = cv2.imread(str(shot))
    assert image is not None and image.std() > 10  # a rendered page, not a blank one
