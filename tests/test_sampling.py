"""Clip planning against hand-computed frame indices (DESIGN.md, clip sampling)."""

import math

import pytest

from edge.sampling import ClipSampler


def drive(sampler, num_frames, fps=25.0):
    """Feed frames 0..num_frames-1 like the pipeline does; return the clips' frame index tuples."""
    clips, seq = [], 0
    for index in range(num_frames):
        if not sampler.wants(index):
            continue
        planned = sampler.add(seq, index, index / fps)
        seq += 1
        if planned:
            assert planned.last_seq == seq - 1
            clips.append(planned.clip)
    tail = sampler.finish()
    if tail:
        assert tail.planned.last_seq == seq - 1 + len(tail.repeat_seqs)
        clips.append(tail.planned.clip)
    return clips


@pytest.mark.parametrize("num_frames", [1, 15, 16, 17, 250])
def test_batch_gives_ceil_n_over_clip_len_clips(num_frames):
    clips = drive(ClipSampler("batch", clip_len=16), num_frames)
    assert len(clips) == math.ceil(num_frames / 16)
    for number, clip in enumerate(clips):
        assert clip.clip_index == number
        assert clip.start_frame == 16 * number
        assert clip.end_frame == min(16 * number + 15, num_frames - 1)
        assert len(clip.frame_indices) == 16


def test_batch_tail_is_loop_padded_in_order():
    clips = drive(ClipSampler("batch", clip_len=16), 19)
    assert clips[-1].frame_indices == (16, 17, 18) * 5 + (16,)


def test_tail_repeats_the_right_ring_slots():
    sampler = ClipSampler("batch", clip_len=4)
    for seq, index in enumerate(range(6)):
        sampler.add(seq, index, 0.0)
    tail = sampler.finish()
    assert tail.repeat_seqs == (4, 5)
    assert tail.planned.clip.frame_indices == (4, 5, 4, 5)


def test_zero_frames_give_no_clip():
    assert drive(ClipSampler("batch"), 0) == []
    assert drive(ClipSampler("rolling"), 0) == []


@pytest.mark.parametrize("stride", [1, 3, 8, 16, 20])
def test_rolling_predicts_every_stride_frames_once_full(stride):
    clips = drive(ClipSampler("rolling", clip_len=16, stride=stride), 100)
    ends = [clip.end_frame for clip in clips]
    assert ends == list(range(15, 100, stride))
    for clip in clips:
        assert clip.frame_indices == tuple(range(clip.end_frame - 15, clip.end_frame + 1))


def test_rolling_shorter_than_window_gives_nothing_and_warms_up():
    sampler = ClipSampler("rolling", clip_len=16)
    for seq in range(5):
        sampler.add(seq, seq, 0.0)
    assert sampler.warming_up == (5, 16)
    assert sampler.finish() is None


@pytest.mark.parametrize("mode", ["batch", "rolling"])
def test_frame_step_thins_the_clip(mode):
    clips = drive(ClipSampler(mode, clip_len=4, frame_step=3, stride=1), 40)
    first = clips[0]
    assert first.frame_indices == (0, 3, 6, 9)
    assert first.start_time_s == 0.0 and first.end_time_s == pytest.approx(9 / 25)
    if mode == "batch":
        assert len(clips) == math.ceil(14 / 4)  # 14 sampled frames: 0, 3, ..., 39
    else:
        assert [clip.end_frame for clip in clips] == list(range(9, 40, 3))


def test_ring_capacity_leaves_room_for_in_flight_clips():
    sampler = ClipSampler("rolling", clip_len=16, stride=2)
    assert sampler.ring_capacity(4) >= 16 + 4 * 2


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        ClipSampler("sliding")
    with pytest.raises(ValueError, match="clip_len"):
        ClipSampler("batch", clip_len=0)
