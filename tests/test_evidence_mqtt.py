"""The evidence over MQTT (real mosquitto on 127.0.0.1): the clip event on ``{prefix}/{camera}/clip``, and
each rule's Home Assistant ``image`` showing its last failure's snapshot (the JPEG bytes, retained)."""

from __future__ import annotations

import json

import pytest
from support_mqtt import Collector, Mosquitto, wait_until

from edge.config import MqttConfig
from edge.events import from_json_dict
from edge.sinks.mqtt import MqttSink


@pytest.fixture
def broker(tmp_path):
    mosquitto = Mosquitto(tmp_path / "broker").start()
    yield mosquitto
    mosquitto.stop()


def check_line(number, passed):
    return {"event": "check", "id": f"wash-20s-{number}", "rule": "wash-20s", "kind": "min_duration",
            "camera": "sink", "passed": passed, "reason": "short", "time_s": float(number), "time_base": "media",
            "activity_ids": [f"sink-handwash-{number}"], "clip": None, "clip_url": None, "snapshot": None,
            "snapshot_url": None, "wall_time": "2026-11-28T08:00:00+00:00", "run_id": "run"}


def clip_line(number, snapshot):
    return {"event": "clip", "camera": "sink", "check_id": f"wash-20s-{number}", "rule": "wash-20s",
            "clip": f"/c/run-wash-20s-{number}.mp4", "clip_url": f"/clips/sink/d/run-wash-20s-{number}.mp4",
            "snapshot": str(snapshot), "snapshot_url": f"/clips/sink/d/run-wash-20s-{number}.jpg",
            "vtt": f"/c/run-wash-20s-{number}.vtt", "start_s": 0.0, "end_s": 4.0,
            "wall_time": "2026-11-28T08:00:01+00:00", "run_id": "run"}


def test_clip_events_and_the_rule_image_of_the_last_failure(broker, tmp_path):
    collector = Collector(broker.port, topics=("edge-har/#", "homeassistant/#"))
    sink = MqttSink(MqttConfig(host="127.0.0.1", port=broker.port, spool_dir=str(tmp_path / "spool")),
                    cameras=["sink"], rules=["wash-20s"], reconnect_delay_s=(0.1, 0.5))
    try:
        discovery = "homeassistant/image/edge-har/rule_wash-20s_snapshot/config"
        assert collector.wait_for(lambda c: c.last(discovery) is not None)
        config = json.loads(collector.last(discovery))
        assert config["image_topic"] == "edge-har/rules/wash-20s/snapshot"
        assert config["content_type"] == "image/jpeg" and config["unique_id"] == "edge-har_rule_wash-20s_snapshot"

        pictures = {}
        for number, passed in ((1, False), (2, True), (3, False)):
            pictures[number] = tmp_path / f"{number}.jpg"
            pictures[number].write_bytes(b"\xff\xd8JPEG %d\xff\xd9" % number)
            sink.handle(from_json_dict(check_line(number, passed)))
            sink.handle(from_json_dict(clip_line(number, pictures[number])))
        assert collector.wait_count("edge-har/sink/clip", 3)
        assert [json.loads(p) for p in collector.payloads("edge-har/sink/clip")] == \
            [clip_line(n, pictures[n]) for n in (1, 2, 3)]
        # the image follows failures only: 1, then 3 (2 passed)
        assert collector.wait_last("edge-har/rules/wash-20s/snapshot", pictures[3].read_bytes())
        assert collector.payloads("edge-har/rules/wash-20s/snapshot") == [pictures[1].read_bytes(),
                                                                           pictures[3].read_bytes()]
        late = Collector(broker.port, topics=("edge-har/rules/#",))
        assert late.wait_last("edge-har/rules/wash-20s/snapshot", pictures[3].read_bytes())   # retained
        late.close()
        assert wait_until(lambda: sink.pending == 0)
    finally:
        sink.close()
        collector.close()
