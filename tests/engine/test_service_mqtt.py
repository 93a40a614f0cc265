"""The service tells a real MQTT broker what events.jsonl records, through a broker restart.

A scripted colour video and the colour test model (support_activities) make real activities and
checks through the real engine; a real mosquitto on 127.0.0.1 (support_mqtt) is stopped after the
first activity event and started again a few events later. The oracle is events.jsonl itself:
every activity and check line it holds arrives on ``edge-har/events`` / ``edge-har/checks``, in
order, none twice.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

from support_activities import ACTIVITIES_YAML, colour_model_xml, script_video  # noqa: F401  (fixtures)
from support_mqtt import WAIT_S, Collector, Mosquitto, wait_until

from edge.config import config_from_mapping
from edge.engine.service import Service

RULES = [
    {"name": "wash-20s", "kind": "min_duration", "activity": "handwash", "seconds": 20},
    {"name": "no-smoking", "kind": "forbidden", "activity": "smoking"},
    {"name": "wash-after-smoking", "kind": "followed_by", "first": "smoking", "then": "handwash", "within_s": 5},
]


class BrokerOutage:
    """A sink that stops the broker on the first activity event and starts it again ``after`` events later,
    from the lane's own thread, so the outage falls at a known place in the event stream."""

    def __init__(self, broker: Mosquitto, after: int, service):
        self.broker, self.after, self.service = broker, after, service
        self.during: list[dict] = []
        self.state = "up"
        self.restarted = threading.Event()

    def handle(self, event):
        if event.kind not in ("activity", "check"):
            return
        if self.state == "up":
            self.broker.stop()
            self.state = "down"
        if self.state == "down":
            self.during.append(event.to_json_dict())
            if len(self.during) >= self.after:
                self.broker.start()
                self.state = "back"
                self.restarted.set()
                # hold this camera until the sink is connected again, so the run does not end first
                from edge.sinks.mqtt import MqttSink

                [mqtt] = [sink for sink in self.service.sinks if isinstance(sink, MqttSink)]
                assert wait_until(lambda: mqtt.connected, 60), "the MQTT sink did not reconnect"

    def close(self):
        pass


def test_events_and_checks_reach_mqtt_in_order_across_a_broker_restart(tmp_path, colour_model_xml, script_video,
                                                                         compiled_cache):
    broker = Mosquitto(tmp_path / "broker").start()
    collector = Collector(broker.port, topics=("edge-har/#", "homeassistant/#"), persistent=True,
                          client_id="test-collector")
    try:
        video = script_video([("grey", 1.28), ("green", 2.56), ("grey", 1.28), ("red", 3.84), ("grey", 1.28),
                              ("green", 1.28), ("grey", 7.68)])
        config = config_from_mapping({
            "source": str(video),
            "model": {"path": str(colour_model_xml)},
            "inference": {"cache_dir": str(compiled_cache)},
            "output": {"events": str(tmp_path / "events.jsonl"), "summary": str(tmp_path / "summary.json"),
                       "progress": False},
            "activities": ACTIVITIES_YAML,
            "rules": RULES,
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "spool_dir": str(tmp_path / "spool")},
        })
        service = Service(config, mode="run")
        outage = BrokerOutage(broker, after=3, service=service)
        service.subscribe(outage)
        result = service.run()
        assert result.exit_code == 0
        assert outage.restarted.is_set(), "the script made fewer events than the outage needs"

        lines = [json.loads(line) for line in Path(tmp_path / "events.jsonl").read_text().splitlines()]
        activities = [line for line in lines if line.get("event") == "activity"]
        checks = [line for line in lines if line.get("event") == "check"]
        assert activities and checks
        assert any(record in outage.during for record in activities + checks)
        assert collector.wait_for(lambda c: len(c.payloads("edge-har/events")) >= len(activities)
                                  and len(c.payloads("edge-har/checks")) >= len(checks), WAIT_S * 3)
        got_activities = [json.loads(p) for p in collector.payloads("edge-har/events")]
        got_checks = [json.loads(p) for p in collector.payloads("edge-har/checks")]
        assert got_activities == activities  # the same objects, in order, none twice
        assert got_checks == checks
        failed = {check["rule"] for check in checks if check["passed"] is False}
        assert "no-smoking" in failed

        # retained state and Home Assistant discovery, from a fresh subscriber
        fresh = Collector(broker.port, topics=("edge-har/#", "homeassistant/#"))
        try:
            camera = result.summary["camera"]
            assert fresh.wait_last(f"edge-har/{camera}/status", b"finished")
            assert fresh.wait_last("edge-har/available", b"offline")  # a clean stop says so
            assert fresh.wait_last("edge-har/rules/no-smoking/state", b"ON")
            assert fresh.wait_for(lambda c: any(topic.startswith("homeassistant/") and topic.endswith("/config")
                                                for topic, _, _ in c.messages))
        finally:
            fresh.close()
    finally:
        collector.close()
        broker.stop()


# -- one current activity for MQTT, the page and the overlay ---------------------------------------

FOOD_PREP_BLUE = (150, 58, 58)   # BGR: blue stands out by 92 → logit 8 → "peeling potatoes" ≈ 0.88, not 1


def write_colour_video(path, script, fps=25.0, size=(160, 120)):
    """``script``: [(BGR colour, clips of 16 frames)], a dark square moving 3 px a frame over each colour."""
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    index = 0
    for colour, clips in script:
        for _ in range(16 * clips):
            image = np.empty((size[1], size[0], 3), np.uint8)
            image[:] = colour
            x = (index * 3) % (size[0] - 12)
            image[54:66, x:x + 12] = (70, 70, 70)
            writer.write(image)
            index += 1
    writer.release()
    return path


class CurrentActivityWatch:
    """A sink that, at each prediction (on the lane's thread, between two monitor steps), reads the camera's
    current activity three ways: MQTT's retained state, /api/status (``service.status()``) and the overlay."""

    def __init__(self, service, camera):
        self.service, self.camera = service, camera
        self.seen: list[tuple[str, str, str]] = []
        self.open_while: list[tuple[str, list[str]]] = []

    def handle(self, event):
        from edge.sinks.mqtt import MqttSink

        [mqtt] = [sink for sink in self.service.sinks if isinstance(sink, MqttSink)]
        if event.kind == "status" and event.state == "starting":
            # state messages are QoS 0: hold the camera until the sink is connected, so none is lost
            assert wait_until(lambda: mqtt.connected, 60), "the MQTT sink did not connect"
        if event.kind != "prediction" or event.camera != self.camera:
            return
        lane = self.service.lanes[self.camera]
        status = self.service.status()["cameras"][self.camera]["activity"]
        overlay = [line.rsplit(" ", 2)[0] for line in lane.overlay_state().lines[1:]
                   if re.fullmatch(r"\S+ \d+ s", line)]
        self.seen.append((mqtt._camera_activity[self.camera], status["activity"] if status else "none",
                          overlay[0] if overlay else "none"))
        self.open_while.append((self.seen[-1][1], list(lane.reporter.monitor.tracker.open_ids)))

    def close(self):
        pass


def test_mqtt_the_page_and_the_overlay_agree_on_the_current_activity(tmp_path, colour_model_xml, compiled_cache):
    """Handwash (red, score ≈ 1) and food_prep (a paler blue, ≈ 0.88) overlap: each stays open for gap_s after
    its colour goes. By peak, handwash would stay current all along; by the latest score, food_prep is current
    while its clips come although handwash is still open, then handwash, then food_prep again."""
    broker = Mosquitto(tmp_path / "broker").start()
    collector = Collector(broker.port, topics=("edge-har/#",))
    try:
        red, grey = (40, 40, 220), (128, 128, 128)
        video = write_colour_video(tmp_path / "overlap.mp4", [(grey, 1), (red, 3), (FOOD_PREP_BLUE, 2), (red, 1),
                                                              (FOOD_PREP_BLUE, 1), (grey, 6)])
        config = config_from_mapping({
            "model": {"path": str(colour_model_xml)},
            "inference": {"cache_dir": str(compiled_cache)},
            "sampling": {"mode": "batch"},
            "output": {"progress": False},
            "activities": ACTIVITIES_YAML,
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "spool_dir": str(tmp_path / "spool")},
            "cameras": {"sink": {"source": str(video)}},
        })
        service = Service(config, mode="run")
        watch = CurrentActivityWatch(service, "sink")
        service.subscribe(watch)
        assert service.run().exit_code == 0

        # Each clip's reading is taken before that clip is judged: the state after the clip before it.
        assert all(mqtt == page == overlay for mqtt, page, overlay in watch.seen), watch.seen
        # clips: 0 grey, 1–3 red, 4–5 blue, 6 red, 7 blue, 8–13 grey; handwash ends at clip 10, food_prep at 11
        assert [page for _, page, _ in watch.seen] == [
            "none", "none", "handwash", "handwash", "handwash", "food_prep", "food_prep", "handwash", "food_prep",
            "food_prep", "food_prep", "food_prep", "none", "none"]
        # food_prep was current while handwash, which peaked higher, was still open
        assert ("food_prep", ["sink-handwash-1", "sink-food_prep-1"]) in watch.open_while
        # what the broker got: every change, in order, and none at the end
        assert collector.wait_last("edge-har/sink/activity", b"none")
        changes = [payload.decode() for payload in collector.payloads("edge-har/sink/activity")]
        deduplicated = [value for number, value in enumerate(changes) if number == 0 or changes[number - 1] != value]
        assert deduplicated == ["none", "handwash", "food_prep", "handwash", "food_prep", "none"]
    finally:
        collector.close()
        broker.stop()
