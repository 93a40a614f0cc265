"""The seed's pipeline, the baseline of the end-to-end suite, written from its documented behaviour
(OpenCV's action-recognition sample and the pyimagesearch tutorial it follows):

- ``batch``: read 16 frames, ``cv2.dnn.blobFromImages(frames, 1.0, (112, 112), mean, swapRB=True,
  crop=True)``, transpose to N,C,T,H,W, ``net.setInput``, ``net.forward()``; next 16 frames.
- ``rolling``: a ``deque(maxlen=16)`` of frames; once full, the same blob + forward on every frame.

The network is ``cv2.dnn.readNetFromONNX`` on the same model as edge-har. No window, no video
written (edge-har's runs write none either). One JSON object goes to ``--out``: ``clips``, a list
of ``{end_frame, done, latency_ms}`` in order (``done`` epoch seconds when the label was known;
``latency_ms`` from the clip's newest frame being read to its label), plus ``frames_read``,
``load_s`` (reading the network) and ``mode``.

    python benchmarks/seed_pipeline.py --mode rolling --video V.mp4 --onnx M.onnx --out r.json [--max-clips N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import deque

import cv2
import numpy as np

MEAN = (114.7748, 107.7354, 99.4750)
CLIP_LEN = 16
SIZE = 112


def classify(net, frames) -> int:
    blob = cv2.dnn.blobFromImages(frames, 1.0, (SIZE, SIZE), MEAN, swapRB=True, crop=True)
    blob = np.transpose(blob, (1, 0, 2, 3))[np.newaxis]  # T,C,H,W -> 1,C,T,H,W as the sample does
    net.setInput(blob)
    return int(np.argmax(net.forward()))


def run(mode: str, video: str, onnx: str, max_clips: int | None = None) -> dict:
    started = time.perf_counter()
    net = cv2.dnn.readNetFromONNX(onnx)
    load_s = time.perf_counter() - started
    capture = cv2.VideoCapture(video)
    if not capture.isOpened():
        raise SystemExit(f"seed_pipeline: cannot open video {video}")
    clips, frames_read = [], 0
    window: deque = deque(maxlen=CLIP_LEN)
    batch: list = []
    try:
        while max_clips is None or len(clips) < max_clips:
            ok, frame = capture.read()
            if not ok:
                break
            read_ns = time.perf_counter_ns()
            frames_read += 1
            if mode == "batch":
                batch.append(frame)
                if len(batch) < CLIP_LEN:
                    continue
                classify(net, batch)
                batch = []
            else:
                window.append(frame)
                if len(window) < CLIP_LEN:
                    continue
                classify(net, list(window))
            clips.append({"end_frame": frames_read - 1, "done": time.time(),
                          "latency_ms": (time.perf_counter_ns() - read_ns) / 1e6})
    finally:
        capture.release()
    return {"mode": mode, "clips": clips, "frames_read": frames_read, "load_s": load_s}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("batch", "rolling"), required=True)
    parser.add_argument("--video", required=True)
    parser.add_argument("--onnx", required=True)
    parser.add_argument("--out", required=True, help="where to write the JSON result")
    parser.add_argument("--max-clips", type=int, help="stop after this many clips (the rolling seed is slow)")
    args = parser.parse_args(argv)
    result = run(args.mode, args.video, args.onnx, args.max_clips)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
