"""Evidence: a clip, a snapshot and the labels of what a check judged; recordings; the disk they live on.

The data flow (issue 16, DESIGN.md "Release 3 / Evidence")::

    camera packets ──► Recorder (record.py) ──► segments on disk + the newest in memory
    (the inference source's demuxer, tapped,          │
     or record.source on its own connection)          │ packets(start_s, end_s)
                                                      ▼
    check / activity events ──► EvidenceSink (manager.py) ──► cut.py: keyframe cut, no re-encode
      (subscribed to the service)     │                        (masks: decode → black → encode)
                                      ├─► vtt.py: the predictions' WebVTT beside the clip
                                      ├─► snapshot.py: JPEG of the best frame, overlay drawn
                                      ├─► store.py: {id}.json sidecar, what /api/clips lists
                                      └─► ClipEvent ──► emit (events.jsonl, MQTT, the page)

A file camera has nothing to record: ``FilePackets`` (cut.py) reads the packets from the file itself.

Contracts shared by the modules:

- Times are in the camera's time base (``CameraConfig.time_base``): ``media`` (seconds of the file, as the
  predictions' ``start_time_s``/``end_time_s``) or ``wall`` (Unix seconds, as checks of live cameras).
- A packet source (``FilePackets``, ``Recorder``) has ``packets(start_s, end_s) -> Packets``: the stream
  template (an ``av`` video stream to copy parameters from) and an iterator of ``TimedPacket`` (the
  ``av.Packet`` as demuxed, its ``pts_s``/``dts_s`` in the time base, ``key``), in decode order, from the
  last keyframe at or before ``start_s`` to the first packet after ``end_s``; and ``covered_until() ->
  float | None``: the newest time whose packets it can give (a clip waits for ``end_s + post_s``).
- Files: ``{evidence.dir}/{YYYY-MM-DD}/{id}.mp4`` (H.264, faststart), ``{id}.jpg``, ``{id}.vtt``,
  ``{id}.json`` (the /api/clips item: ``id``, ``camera``, ``rule``, ``activity``, ``passed``, ``start_s``,
  ``end_s``, ``wall_time``, ``clip``, ``snapshot``, ``vtt`` as names relative to ``evidence.dir``).
  URLs: ``/clips/{camera}/{relative path}``. ``id`` is the check's id (``edge.checks``: ``{rule}-{n}``) or
  the activity segment's id, prefixed with the run id so ids are unique across runs.
- Recordings: ``{record.dir}/{YYYY-MM-DD}/{unix seconds with 3 decimals}.mp4``, fragmented MP4 whose time 0
  is the wall time in its name.
- ``{home}`` in a path is ``edge.models.paths.edge_home()``.
- ``privacy.pictures`` false: nothing here is built (``CameraConfig.clips`` is ``none``, no recorder).
"""
