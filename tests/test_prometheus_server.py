"""A real Prometheus server (Debian's) scrapes the service's /metrics and sees every camera."""

from __future__ import annotations

import pytest

from support_web import PROMETHEUS, check_record, prediction_record, service_with_metrics, serving, start_prometheus

pytestmark = pytest.mark.skipif(PROMETHEUS is None, reason="prometheus is not installed (apt-get install prometheus)")


def by_camera(result) -> dict:
    return {sample["metric"]["camera"]: float(sample["value"][1]) for sample in result}


@pytest.mark.parametrize("token", [None, "scrape-token"])
def test_prometheus_scrapes_every_camera(token):
    service, _ = service_with_metrics(("sink", "kitchen", "yard"))
    service.cameras["yard"].update(state="offline")
    for index in range(3):
        service.emit("prediction", "sink", prediction_record("sink", "washing hands", 0.9, clip_index=index))
    service.emit("check", "kitchen", check_record("kitchen", "no-smoking", False))
    with serving(service, token=token) as server:
        target = server.url.removeprefix("http://")
        with start_prometheus([target], token=token) as prometheus:
            up = prometheus.wait_for("edgehar_camera_up", lambda result: len(result) == 3)
            assert by_camera(up) == {"sink": 1.0, "kitchen": 1.0, "yard": 0.0}
            assert {sample["metric"]["job"] for sample in up} == {"edge-har"}
            clips = by_camera(prometheus.query("edgehar_clips_total"))
            assert clips == {"sink": 3.0, "kitchen": 0.0, "yard": 0.0}
            failed = prometheus.query('edgehar_checks_total{passed="false"}')
            assert [(s["metric"]["camera"], s["metric"]["rule"], s["value"][1]) for s in failed] == \
                [("kitchen", "no-smoking", "1")]
            # The scrape itself is healthy (Prometheus's own "up" for the target).
            assert [s["value"][1] for s in prometheus.query('up{job="edge-har"}')] == ["1"]
