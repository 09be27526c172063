"""Real server processes for end-to-end tests and benchmarks, on free ports."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

__all__ = ["ChildServer", "ServerProcess", "free_port"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ChildServer:
    """An HTTP server in a child process, ready once ``ready_path`` answers 200.

    ``stop()`` terminates it (then kills it after 15 s); ``kill()`` is SIGKILL.
    """

    def __init__(
        self,
        command: list[str],
        *,
        port: int,
        log_path: Path,
        ready_path: str = "/readyz",
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT
        )
        self._wait_ready(ready_path, timeout)

    @property
    def pid(self) -> int:
        return self.process.pid

    def _wait_ready(self, ready_path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._log.close()
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}{ready_path}", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server not ready in {timeout}s:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self._log.close()


class ServerProcess(ChildServer):
    """``ledger serve`` in a child process; ``stop()`` or ``kill()`` ends it."""

    def __init__(
        self,
        *,
        database_url: str,
        data_dir: Path,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        port = port or free_port()
        environment = {
            **os.environ,
            "LEDGER_DATABASE_URL": database_url,
            "LEDGER_DATA_DIR": str(data_dir),
            "LEDGER_LOG_LEVEL": "warning",
            # Durability and concurrency tests drive the server unauthenticated and
            # unthrottled; tests of access control pass LEDGER_AUTH=tokens in ``env``.
            "LEDGER_AUTH": "off",
            "LEDGER_RATE_LIMIT": "0",
            **(env or {}),
        }
        super().__init__(
            [sys.executable, "-m", "ledger", "serve", "--port", str(port)],
            port=port,
            log_path=data_dir / f"server-{port}.log",
            env=environment,
        )
