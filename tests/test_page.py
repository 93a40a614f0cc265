"""The live page in a real browser (headless Debian Chromium) against the app on 127.0.0.1."""

from __future__ import annotations

import os
import re
import shutil

import cv2
import numpy as np
import pytest

from support_web import (CHROMIUM, HeadlessChromium, check_record, prediction_record, scene, service_with_metrics,
                         serving)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")

TOKEN = "page-token"
FAILED_RED = np.array([40, 40, 198])  # #c62828 in BGR, the failed check's text and border
# Rendered: cards for both cameras, their frames decoded, and the checks listed.
RENDERED = ("document.querySelectorAll('.camera').length === 2 && "
            "Array.from(document.querySelectorAll('.camera img')).every(img => img.naturalWidth > 0) && "
            "document.querySelectorAll('#checks .check').length === 2")


@pytest.fixture
def site():
    service, _ = service_with_metrics(("sink", "kitchen"))
    service.hubs["sink"].publish(scene(1))
    service.hubs["kitchen"].publish(scene(7))
    service.emit("prediction", "sink", prediction_record("sink", "washing hands", 0.82))
    service.cameras["sink"]["activity"] = {"activity": "handwash", "since_s": 12.5, "id": "sink-1",
                                         "time_base": "media", "duration_s": 7.0}
    service.cameras["kitchen"].update(state="reconnecting", reason="stream lost: connection reset")
    service.emit("check", "kitchen", check_record("kitchen", "no-smoking", True, reason="no smoking seen",
                                                  wall_time="2026-11-28T08:00:05.000Z"))
    service.emit("check", "sink", check_record("sink", "wash-20s", False, reason="washed 12.5 s, needs 20 s",
                                               wall_time="2026-11-28T08:00:01.000Z"))
    return service


def card(dom: str, camera: str) -> str:
    match = re.search(rf'<article class="camera" id="camera-{camera}".*?</article>', dom, re.S)
    assert match, f"no card for {camera}"
    return match.group(0)


def test_page_shows_every_camera_its_label_activity_and_failed_checks_first(site):
    with serving(site) as server, HeadlessChromium() as browser:
        browser.open(server.url + "/").wait_for(RENDERED)
        dom = browser.dom()
        sink, kitchen = card(dom, "sink"), card(dom, "kitchen")
        assert '<img alt="sink live" src="/cameras/sink/mjpeg">' in sink
        assert '<img alt="kitchen live" src="/cameras/kitchen/mjpeg">' in kitchen
        assert ">sink<" in sink and ">kitchen<" in kitchen
        assert "washing hands 82%" in sink and "activity: handwash for 7 s" in sink
        assert 'class="badge state online">online<' in sink
        assert 'class="badge state reconnecting">reconnecting<' in kitchen and "stream lost" in kitchen
        assert "no prediction yet" in kitchen
        checks = re.findall(r'<li class="check (\w+)" data-rule="([\w-]+)">', dom)
        assert checks == [("failed", "wash-20s"), ("passed", "no-smoking")]  # failed first, though older
        assert "washed 12.5 s, needs 20 s" in dom
        assert browser.evaluate("getComputedStyle(document.querySelector('.check.failed')).color") == \
            "rgb(198, 40, 40)"
        assert browser.evaluate("!document.getElementById('untrained').hidden")
        assert "untrained demo model" in dom

        # It updates without reloading: a new prediction and a new failed check appear by polling.
        browser.evaluate("window.notReloaded = true")
        site.emit("prediction", "kitchen", prediction_record("kitchen", "smoking", 0.64))
        site.emit("check", "kitchen", check_record("kitchen", "no-smoking", False, reason="smoking seen",
                                                   wall_time="2026-11-28T08:00:09.000Z"))
        browser.wait_for("document.querySelector('#camera-kitchen .label').textContent === 'smoking 64%' && "
                         "document.querySelectorAll('#checks .check.failed').length === 2")
        assert browser.evaluate("window.notReloaded === true")
        rules = re.findall(r'<li class="check (\w+)" data-rule="([\w-]+)">', browser.dom())
        assert rules == [("failed", "no-smoking"), ("failed", "wash-20s"), ("passed", "no-smoking")]


def test_trained_model_has_no_untrained_notice(site):
    site.model["untrained"] = False
    with serving(site) as server, HeadlessChromium() as browser:
        browser.open(server.url + "/").wait_for(RENDERED)
        assert browser.evaluate("document.getElementById('untrained').hidden")


def test_page_passes_its_token_on_to_fetches_and_streams(site):
    with serving(site, token=TOKEN) as server, HeadlessChromium() as browser:
        browser.open(f"{server.url}/?token={TOKEN}").wait_for(RENDERED)
        sources = browser.evaluate("Array.from(document.images).map(img => img.getAttribute('src'))")
        assert sources == [f"/cameras/sink/mjpeg?token={TOKEN}", f"/cameras/kitchen/mjpeg?token={TOKEN}"]
        assert browser.evaluate("document.getElementById('error').textContent") == ""


def region(image: np.ndarray, rect: dict) -> np.ndarray:
    x, y, w, h = (int(round(rect[key])) for key in ("x", "y", "width", "height"))
    return image[y:y + h, x:x + w]


def test_screenshot_shows_the_frames_and_the_red_check(site, tmp_path):
    path = tmp_path / "page.png"
    with serving(site) as server, HeadlessChromium(size=(1280, 800)) as browser:
        browser.open(server.url + "/").wait_for(RENDERED)
        # Let the browser paint the state the DOM already holds, then capture.
        browser.evaluate("new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
        rects = browser.evaluate("""JSON.parse(JSON.stringify({
            failed: document.querySelector('.check.failed').getBoundingClientRect(),
            passed: document.querySelector('.check.passed').getBoundingClientRect(),
            sink: document.querySelector('#camera-sink img').getBoundingClientRect(),
            kitchen: document.querySelector('#camera-kitchen img').getBoundingClientRect()}))""")
        browser.screenshot(path)
    if os.environ.get("EDGE_HAR_SCREENSHOT"):
        shutil.copy(path, os.environ["EDGE_HAR_SCREENSHOT"])
    shot = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert shot is not None and shot.shape[:2] == (800, 1280)
    assert shot.std() > 20  # not blank

    def red_pixels(area):
        return int((np.abs(area.astype(int) - FAILED_RED).max(axis=2) < 30).sum())

    assert red_pixels(region(shot, rects["failed"])) > 200
    assert red_pixels(region(shot, rects["passed"])) == 0
    # Each camera's frame is painted in its <img>: its yellow box (BGR 30, 200, 240) is there.
    for camera in ("sink", "kitchen"):
        area = region(shot, rects[camera])
        assert (np.abs(area.astype(int) - [30, 200, 240]).max(axis=2) < 40).sum() > 500, camera
