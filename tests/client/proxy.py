"""An HTTP proxy on a real port between a client and a real server, which
can change, replace or swallow any answer: the network a client must not trust."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

__all__ = ["DROP", "Alter", "Proxy", "Reply", "proxy"]

# Hop-by-hop and length headers: the proxy writes its own.
_SKIPPED = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class _Drop:
    """Forward the request, then close the connection without answering."""


DROP = _Drop()
# (method, path with query, the server's answer) -> what the client gets
# instead, DROP, or None to pass the answer on.
Alter = Callable[[str, str, httpx.Response], Reply | _Drop | None]


class Proxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.alter: Alter = lambda method, path, response: None
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._http = httpx.Client(base_url=upstream, timeout=30)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _SKIPPED}
                headers.pop("Host", None)
                proxy.requests.append((self.command, self.path, dict(self.headers.items())))
                response = proxy._http.request(
                    self.command, self.path, content=body, headers=headers
                )
                answer = proxy.alter(self.command, self.path, response)
                if isinstance(answer, _Drop):
                    self.close_connection = True
                    self.connection.close()
                    return
                if answer is None:
                    answer = Reply(
                        response.status_code,
                        response.content,
                        {k: v for k, v in response.headers.items() if k.lower() not in _SKIPPED},
                    )
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()


@contextmanager
def proxy(upstream: str) -> Iterator[Proxy]:
    running = Proxy(upstream)
    try:
        yield running
    finally:
        running.close()
