"""A small RTSP server for the source tests (GStreamer's, from Debian), run with /usr/bin/python3.

    /usr/bin/python3 tests/rtsp_server.py --port 8554 --file clip.mp4 [--path /test] [--max-seconds 300]

Serves the H.264 track of an MP4 file at rtsp://127.0.0.1:PORT/PATH, paced in real time,
to any number of clients. Prints ``ready`` once it listens. Stops on its own when its
standard input closes (the test that started it ended or died) or after --max-seconds.
"""

import argparse
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--path", default="/test")
    parser.add_argument("--max-seconds", type=int, default=300)
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    location = args.file.replace("\\", "\\\\").replace('"', '\\"')
    factory.set_launch(f'( filesrc location="{location}" ! qtdemux ! h264parse '
                       f'! rtph264pay name=pay0 pt=96 config-interval=1 )')
    factory.set_shared(False)  # each client gets the file from its start: a reconnection restarts the media
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
        return 3

    loop = GLib.MainLoop()

    def wait_for_stdin_to_close() -> None:
        sys.stdin.buffer.read()
        GLib.idle_add(loop.quit)

    threading.Thread(target=wait_for_stdin_to_close, daemon=True).start()
    GLib.timeout_add_seconds(args.max_seconds, loop.quit)
    print("ready", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
