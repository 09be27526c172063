"""A real RFC 3161 time-stamping authority for tests: ``openssl ts -reply`` over HTTP.

Run as a child process (``tests/tsa.py`` starts it): ``POST /`` with an
``application/timestamp-query`` body answers ``application/timestamp-reply``,
the TimeStampResp that ``openssl ts -reply`` signs with the configured key;
``GET /readyz`` answers 200 once it listens. Usage:
``python tests/tsa_server.py PORT OPENSSL_TS_CONFIG``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
MAX_QUERY = 64 * 1024

# ``openssl ts -reply`` reads and rewrites its serial file: one reply at a time.
_SERIAL_LOCK = threading.Lock()


def reply(config: Path, query: bytes) -> bytes:
    with tempfile.TemporaryDirectory() as scratch:
        query_path, reply_path = Path(scratch) / "query.tsq", Path(scratch) / "reply.tsr"
        query_path.write_bytes(query)
        argv = ["openssl", "ts", "-reply", "-config", str(config)]
        argv += ["-queryfile", str(query_path), "-out", str(reply_path)]
        with _SERIAL_LOCK:
            subprocess.run(argv, check=True, capture_output=True, timeout=30)
        return reply_path.read_bytes()


class Handler(BaseHTTPRequestHandler):
    config: Path

    def do_GET(self) -> None:
        self._answer(200 if self.path == "/readyz" else 404, "text/plain", b"ok\n")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Content-Type") != QUERY_TYPE or not 0 < length <= MAX_QUERY:
            self._answer(415, "text/plain", b"a timestamp query is expected\n")
            return
        query = self.rfile.read(length)
        try:
            body = reply(self.config, query)
        except subprocess.CalledProcessError as error:
            self._answer(400, "text/plain", error.stderr or b"openssl ts -reply failed\n")
            return
        self._answer(200, REPLY_TYPE, body)

    def _answer(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"tsa: {format % args}\n")


def main(argv: list[str]) -> None:
    port, config = int(argv[0]), Path(argv[1])
    Handler.config = config
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
