"""Camera health: one owner (``edge.health.Health``), one status call per transition, in order, told
from the thread that made it — and a service camera that never gives up."""

import threading

import pytest
from test_sources import FakeCapture, _factory

from edge.health import CameraState, Health
from edge.records import Frame
from edge.sources import Gap, ReconnectPolicy, open_source
from edge.synthetic import write_moving_shapes_video


def test_health_tells_each_transition_once_in_order():
    heard = []
    health = Health()
    health.listen(lambda state, reason: heard.append((state, reason)))
    health.frame()
    health.frame()  # still online: no call
    health.set(CameraState.RECONNECTING, "stream ended")
    health.set(CameraState.RECONNECTING, "stream ended")  # no change: no call
    health.set(CameraState.RECONNECTING, "read failed")   # a new reason is a new line for the user
    health.frame()
    assert heard == [("starting", None), ("online", None), ("reconnecting", "stream ended"),
                     ("reconnecting", "read failed"), ("online", None)]
    assert health.frames == 3 and health.last_frame_monotonic is not None
    assert all(isinstance(state, CameraState) for state, _ in heard)


def test_a_fake_camera_yields_one_status_event_per_transition_with_no_polling_thread():
    """5 frames, a drop, two failed reopenings, 4 frames, a drop, then it gives up: the listener hears
    starting → online → reconnecting → online → reconnecting → offline, each once, from the reading
    thread, and no thread was started to watch the state."""
    factory = _factory([FakeCapture(5), FakeCapture(0, opened=False), FakeCapture(0, opened=False),
                        FakeCapture(4)])
    health = Health()
    heard, threads = [], []
    policy = ReconnectPolicy(attempts=3, delay_s=0.5, max_delay_s=1.5)
    before = threading.active_count()
    with open_source("/dev/video-fake", reconnect=policy, capture_factory=factory, sleep=lambda s: None,
                     health=health) as source:
        health.listen(lambda state, reason: (heard.append((state.value, reason)),
                                             threads.append(threading.get_ident())))
        items = list(source)
        assert threading.active_count() == before  # nobody polls
    assert [type(item).__name__ for item in items] == ["Frame"] * 5 + ["Gap"] + ["Frame"] * 4 + ["Gap"]
    states = [state for state, _ in heard]
    assert states == ["starting", "online", "reconnecting", "online", "reconnecting", "offline"]
    assert "camera read failed" in heard[2][1] and "gave up after 3" in heard[5][1]
    assert set(threads) == {threading.get_ident()}  # told from the thread that read the source
    assert health.reconnects == 1 and health.frames == 9 and health.reconnect_attempts == 6


class Reboot:
    """A camera that is away for ``away`` opening attempts (longer than all the quick attempts),
    then gives ``frames`` frames again."""

    def __init__(self, first: int, away: int, frames: int) -> None:
        self.plan = [FakeCapture(first)] + [FakeCapture(0, opened=False)] * away + [FakeCapture(frames)]

    def __call__(self, spec):
        return self.plan.pop(0) if self.plan else FakeCapture(0, opened=False)


def test_a_service_camera_keeps_trying_every_max_delay_and_comes_back_by_itself():
    """give_up=False (serve): out of its 3 quick attempts the camera is offline with its reason, tries
    every max_delay_s (20 more times here, as a camera rebooting for minutes would need), then is
    online again by itself and its frames keep counting after one gap."""
    sleeps, heard = [], []
    health = Health()
    policy = ReconnectPolicy(attempts=3, delay_s=0.5, max_delay_s=10.0, give_up=False)
    with open_source("/dev/video-fake", reconnect=policy, capture_factory=Reboot(4, 23, 6), sleep=sleeps.append,
                     health=health) as source:
        health.listen(lambda state, reason: heard.append((state.value, reason)))
        items = []
        for item in source:
            items.append(item)
            if isinstance(item, Frame) and item.index == 9:
                source.request_stop()
    gaps = [item for item in items if isinstance(item, Gap)]
    assert [f.index for f in items if isinstance(f, Frame)] == list(range(10))
    assert len(gaps) == 1 and not gaps[0].gave_up and gaps[0].after_frame_index == 3
    assert sleeps == [0.5, 1.0, 2.0] + [10.0] * 21
    states = [state for state, _ in heard]
    assert states == ["starting", "online", "reconnecting", "offline", "online"]
    assert "retrying every 10 s" in heard[3][1] and "cannot open" in heard[3][1]
    assert source.error is None and health.reconnects == 1


def test_a_run_camera_still_gives_up():
    policy = ReconnectPolicy(attempts=2, delay_s=0.1, max_delay_s=0.1)  # give_up=True: edge-har run
    with open_source("/dev/video-fake", reconnect=policy, capture_factory=Reboot(2, 5, 3),
                     sleep=lambda s: None) as source:
        items = list(source)
    assert isinstance(items[-1], Gap) and items[-1].gave_up
    assert source.state == "offline" and "gave up after 2" in source.state_reason


@pytest.mark.parametrize("owned", [True, False])
def test_finished_belongs_to_whoever_owns_the_health(owned, tmp_path):
    """A source that made its own Health says `finished` at its end; one handed a camera's Health
    leaves `finished` to the lane, which says it once its last clip is out."""
    path = write_moving_shapes_video(tmp_path / "clip.mp4", 5, 64, 48)
    health = None if owned else Health()
    with open_source(path, health=health) as source:
        assert len(list(source)) == 5
        assert source.ended == "end of file"
        assert source.state == ("finished" if owned else "online")


def test_camera_state_words():
    assert [state.value for state in CameraState] == ["starting", "online", "reconnecting", "offline", "finished"]
    assert str(CameraState.ONLINE) == "online" and CameraState.ONLINE == "online"
