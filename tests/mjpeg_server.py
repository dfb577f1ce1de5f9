"""Test helper: serve a video file as an HTTP MJPEG stream (multipart/x-mixed-replace), as IP
cameras do, on a loopback port, in real time.

    python tests/mjpeg_server.py VIDEO PORT [SECONDS]
"""
from __future__ import annotations

import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import av
import cv2

BOUNDARY = "mienframe"


class Handler(BaseHTTPRequestHandler):
    video = ""
    seconds = 30.0

    def log_message(self, *args) -> None:  # noqa: ANN002
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.end_headers()
        start = time.perf_counter()
        try:
            while time.perf_counter() - start < self.seconds:
                with av.open(self.video) as c:
                    rate = float(c.streams.video[0].average_rate or 25)
                    for i, f in enumerate(c.decode(video=0)):
                        ok, jpg = cv2.imencode(".jpg", f.to_ndarray(format="bgr24"))
                        part = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                f"Content-Length: {len(jpg)}\r\n\r\n").encode() + jpg.tobytes() + b"\r\n"
                        self.wfile.write(part)
                        time.sleep(1.0 / rate)
                        if time.perf_counter() - start >= self.seconds:
                            return
        except (BrokenPipeError, ConnectionResetError):
            return


def main() -> None:
    Handler.video = sys.argv[1]
    Handler.seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0
    HTTPServer(("127.0.0.1", int(sys.argv[2])), Handler).serve_forever()


if __name__ == "__main__":
    main()
