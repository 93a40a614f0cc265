"""Running the engine one service after another (eval, learn) frees each service's compiled model.

The OpenVINO callback holds the scheduler's router; what the router held (the lanes, the service's
``on_inferred``) kept the whole service and its compiled model alive, a cycle through C++ the garbage
collector cannot see: ~850 MB more per service run. Oracle: the live ``Classifier`` objects.
"""

from __future__ import annotations

import gc

from support_activities import write_script_video

from edge.config import config_from_mapping
from edge.eval import predict
from edge.runtime import Classifier


def _classifiers() -> int:
    gc.collect()
    return sum(type(o) is Classifier for o in gc.get_objects())  # type(): no attribute access on proxies


def test_each_service_run_frees_its_compiled_model(demo_xml, compiled_cache, tmp_path):
    video = write_script_video(tmp_path / "v.mp4", [("red", 0.64)])
    config = config_from_mapping({"model": {"path": str(demo_xml)}, "inference": {"cache_dir": str(compiled_cache)}})
    before = _classifiers()
    for _ in range(3):
        records = predict.run_model(config, [video], batch=True, features=True)
        assert len(records[video]) == 1 and records[video][0][1]["features"].shape == (512,)
    assert _classifiers() == before
