"""Appends over HTTP: single events at 1, 8 and 32 concurrent clients and
batches of 500, on SQLite and on PostgreSQL.

Every figure comes from real server processes on real ports, each on a fresh
database, driven by ``wrk`` (bench/wrk/append.lua) for a few seconds:

* the ledger, ``ledger serve`` as started by default (its log level, audit
  log on standard error, no access log) with a bearer token (authentication
  is the default), once more with ``LEDGER_AUTH=off``, and once more with
  uvicorn's access log on (``LEDGER_ACCESS_LOG=true``); rate limiting is off
  in all three (``LEDGER_RATE_LIMIT=0``: the default 200/s per token would
  be the figure otherwise);
* naive: bench/naive_app.py inserting the posted JSON into a plain table
  with the same durability, no hashing: the baseline;
* no-op: the same route answering 201 without a database: the HTTP ceiling;
* the ledger once more with three witnesses (``ledger witness serve``) and a
  local RFC 3161 authority (``openssl ts`` behind HTTP) configured, every
  one a real process, for its figures beside the plain ledger's and the
  witness lag: from a checkpoint to the last cosignature of its quorum,
  and from the end of the load to a witnessed head.

The six servers run side by side, each on its own fresh database, and are
measured in interleaved rounds (two by default): a slow spell of a shared
machine falls on all of them, and each figure is its configuration's best
round.

Beside them: PyPI ``eventsourcing`` storing 1000-event batches in-process
(no HTTP, no hashing) on the same database, for the batch figures. Each
server's peak RSS (``VmHWM``, reset before every run) and CPU, and wrk's own
CPU, are measured per run.

The load generator: wrk is C and sends one prebuilt request (the body is
fixed), so per request it needs a small fraction of the CPU the server needs.
It runs as one thread pinned with ``taskset`` to the last CPU, so it can
never take more than one core; the servers are not pinned (pinning them to
the remaining core would also deny PostgreSQL's backends and the GIL-free
parts of SQLite and psycopg the second core). wrk's CPU share, the server's
and the whole machine's are printed and stored for every run: on the 2-core
development machine wrk used 0.01-0.12 of a core while the server used
0.5-1.0.

Targets (2-core machine): 32-client appends >= 1.5x naive and >= 0.5x no-op;
p99 at 8 clients < 50 ms; batches >= 50,000 events/s on SQLite and >= 25,000
on PostgreSQL, set where eventsourcing ran at 54,000 and 23,000/s: on another
machine, read them as 0.93x and 1.09x eventsourcing's in-run rate.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import sqlalchemy as sa

from bench.harness import RESULTS_DIR, Figure, Report, console, peak_rss_mb
from tests.servers import ChildServer, free_port
from tests.tsa import LocalTsa, make_authority
from tests.witnesses import RunningWitness, start_witness

CLIENTS = (1, 8, 32)
BATCH = 500
BATCH_CLIENTS = 4
LEDGER = "bench"
POSTGRES_URL = os.environ.get(
    "LEDGER_BENCH_POSTGRES_URL",
    os.environ.get("LEDGER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
)
BATCH_TARGETS = {"sqlite": 50_000, "postgresql": 25_000}
# The eventsourcing rates the targets were set beside: on a machine where
# eventsourcing runs slower, the targets scale down with it.
REFERENCE_EVENTSOURCING = {"sqlite": 54_000, "postgresql": 23_000}
BACKEND_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
_ROOT = Path(__file__).resolve().parent.parent
# The ledger measured: this checkout's, or, with LEDGER_BENCH_SERVER_ROOT, the
# checkout of another revision (its own ``.venv``), driven by this harness
# against the same baselines, so two revisions' ratios are comparable
# (``python -m bench compare --same-harness``).
_OTHER_ROOT = os.environ.get("LEDGER_BENCH_SERVER_ROOT")
SERVER_ROOT = Path(_OTHER_ROOT).resolve() if _OTHER_ROOT else _ROOT
SERVER_PYTHON = str(SERVER_ROOT / ".venv" / "bin" / "python") if _OTHER_ROOT else sys.executable
# Revisions before witnessing have no witnessed configuration to measure.
SERVER_WITNESSES = (SERVER_ROOT / "ledger" / "witness").is_dir()
_LUA = Path(__file__).resolve().parent / "wrk" / "append.lua"
_CPUS = sorted(os.sched_getaffinity(0))
# wrk alone on the last CPU: see the module docstring.
_WRK_CPUS = str(_CPUS[-1]) if len(_CPUS) > 1 else ""
_TICK = os.sysconf("SC_CLK_TCK")


def position_event(n: int) -> dict[str, Any]:
    """A realistic ``position.stated`` event: about 500 bytes of JSON, like the demo's."""
    return {
        "type": "position.stated",
        "occurred_at": "2025-02-24",
        "party": "US" if n % 2 else "UA",
        "topic": "revenue-share",
        "data": {
            "stance": "demand",
            "summary": "Washington wants half of the revenue from Ukraine's state-owned "
            f"mineral resources paid into a joint fund (statement {n}).",
            "terms": {"share_percent": 50, "fund": "joint investment fund"},
        },
        "source": {
            "name": "The New York Times",
            "kind": "media",
            "url": "https://www.nytimes.com/2025/02/24/world/europe/ukraine-minerals-deal.html",
            "reported_at": "2025-02-24",
        },
    }


@dataclass(frozen=True, slots=True)
class Run:
    """One wrk run against one server."""

    backend: str
    app: str
    clients: int
    events_per_request: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    server_peak_rss_mb: float
    # CPU time over wall time: 1.0 is one core busy throughout.
    server_cores: float
    wrk_cores: float
    machine_busy_cores: float

    @property
    def events_per_s(self) -> float:
        return self.rps * self.events_per_request


class Server(Protocol):
    url: str

    @property
    def pid(self) -> int: ...

    def stop(self) -> None: ...


class AppProcess(ChildServer):
    """``python -m bench.naive_app`` in a child process: naive, or no-op without a URL."""

    def __init__(self, database_url: str | None, log_dir: Path) -> None:
        port = free_port()
        command = [sys.executable, "-m", "bench.naive_app", "--port", str(port)]
        if database_url is not None:
            command += ["--database-url", database_url]
        super().__init__(
            command,
            port=port,
            log_path=log_dir / f"app-{port}.log",
            ready_path="/healthz",
            cwd=_ROOT,
        )


# --- measuring a server process (Linux /proc) ------------------------------


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # utime and stime, the 14th and 15th fields (counted from the pid).
    return (int(fields[11]) + int(fields[12])) / _TICK


def _machine_busy_seconds() -> float:
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / _TICK


class PeakRss:
    """A process's peak RSS over one run.

    Writing 5 to ``clear_refs`` resets the kernel's high-water mark
    (``VmHWM``), which is exact; where that is refused, a sampling thread
    reads ``VmRSS`` every 10 ms instead.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
            self.exact = True
        except OSError:
            self.exact = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        if not self.exact:
            self._thread.start()

    def _field(self, name: str) -> int:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith(name):
                    return int(line.split()[1])
        return 0

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak_kib = max(self.peak_kib, self._field("VmRSS:"))

    def finish_mb(self) -> float:
        if self.exact:
            return peak_rss_mb(self.pid)
        self._stop.set()
        self._thread.join()
        return self.peak_kib / 1024


def wrk(
    server: Server,
    path: str,
    *,
    body_file: Path,
    connections: int,
    seconds: int,
    token: str | None = None,
) -> dict[str, Any]:
    """One wrk run; its counts, latency percentiles and the CPU and memory spent."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (scripts/bench.sh installs it)")
    pinned = ["taskset", "-c", _WRK_CPUS] if _WRK_CPUS and shutil.which("taskset") else []
    threads = 1 if pinned else min(2, connections)
    command = [
        *pinned,
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(_LUA),
        f"{server.url}{path}",
    ]
    env = {**os.environ, "BENCH_BODY_FILE": str(body_file), "BENCH_TOKEN": token or ""}
    rss = PeakRss(server.pid)
    server_cpu = _cpu_seconds(server.pid)
    busy = _machine_busy_seconds()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    measured = {
        "server_peak_rss_mb": rss.finish_mb(),
        "server_cores": (_cpu_seconds(server.pid) - server_cpu) / wall,
        "wrk_cores": (after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime)
        / wall,
        "machine_busy_cores": (_machine_busy_seconds() - busy) / wall,
    }
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH_RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("BENCH_RESULT "))
    failures = {k: result[k] for k in ("connect", "read", "write", "status", "timeout")}
    if any(failures.values()):
        raise RuntimeError(
            f"wrk saw failures against {server.url}{path} at -c{connections}: {failures} "
            f"(status = non-2xx/3xx responses)\n{done.stdout}"
        )
    if result["requests"] == 0:
        raise RuntimeError(f"wrk completed no request against {server.url}{path}")
    return {**result, **measured}


def measure(
    server: Server,
    *,
    backend: str,
    app: str,
    body_file: Path,
    events_per_request: int,
    connections: int,
    seconds: int,
    token: str | None = None,
) -> Run:
    raw = wrk(
        server,
        f"/v1/ledgers/{LEDGER}/events",
        body_file=body_file,
        connections=connections,
        seconds=seconds,
        token=token,
    )
    duration = raw["duration_us"] / 1e6
    run = Run(
        backend=backend,
        app=app,
        clients=connections,
        events_per_request=events_per_request,
        seconds=duration,
        requests=raw["requests"],
        rps=raw["requests"] / duration,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        server_peak_rss_mb=raw["server_peak_rss_mb"],
        server_cores=raw["server_cores"],
        wrk_cores=raw["wrk_cores"],
        machine_busy_cores=raw["machine_busy_cores"],
    )
    console.print(
        f"  {app:<14} -c{connections:<3} {run.events_per_s:>10,.0f} events/s "
        f"({run.rps:,.0f} req/s)  p50 {run.p50_ms:7.2f} ms  p99 {run.p99_ms:7.2f} ms  "
        f"RSS {run.server_peak_rss_mb:6.1f} MB  CPU server {run.server_cores:.2f} "
        f"wrk {run.wrk_cores:.2f} machine {run.machine_busy_cores:.2f}"
    )
    return run


# --- fresh databases -------------------------------------------------------


@contextlib.contextmanager
def fresh_database(backend: str, directory: Path, name: str) -> Iterator[str]:
    """A new SQLite file, or a new PostgreSQL schema dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / f'{name}.db'}"
        return
    schema = f"bench_{name}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = sa.engine.make_url(POSTGRES_URL).update_query_dict(
            {"options": f"-csearch_path={schema}"}
        )
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def postgres_available() -> bool:
    engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


def reachable_backends(backends: tuple[str, ...]) -> Iterator[str]:
    """``backends`` less PostgreSQL when it cannot be reached, saying so."""
    for backend in backends:
        if backend == "postgresql" and not postgres_available():
            console.print(
                f"[bold red]PostgreSQL at {POSTGRES_URL} is unreachable: its figures are "
                "skipped[/] (set LEDGER_BENCH_POSTGRES_URL)"
            )
            continue
        yield backend


# --- the servers -----------------------------------------------------------


def _server_environ() -> dict[str, str]:
    """This process's environment, less what would make another checkout's
    interpreter import this checkout's code."""
    if not _OTHER_ROOT:
        return dict(os.environ)
    drop = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    return {k: v for k, v in os.environ.items() if k not in drop}


def create_token(database_url: str, data_dir: Path) -> str:
    """``ledger tokens create``, as an operator would; the token is its last word."""
    env = {
        **_server_environ(),
        "LEDGER_DATABASE_URL": database_url,
        "LEDGER_DATA_DIR": str(data_dir),
        # The server's origin, hence its key name: one active key, not two.
        "LEDGER_ORIGIN": "bench",
    }
    done = subprocess.run(
        [SERVER_PYTHON, "-m", "ledger", "tokens", "create", "--name", "bench", "--scope", "admin"],
        env=env,
        cwd=SERVER_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()[-1]


def ledger_environment(
    database_url: str,
    data_dir: Path,
    *,
    token: bool,
    access_log: bool = False,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """``ledger serve``'s environment: its defaults (log level, audit log on
    standard error, no access log, ...) but for the database, the origin, no
    rate limit, and authentication only with a token. Any other ``LEDGER_*``
    variable of the caller's is dropped."""
    env = {k: v for k, v in _server_environ().items() if not k.startswith("LEDGER_")}
    env.update(
        LEDGER_DATABASE_URL=database_url,
        LEDGER_DATA_DIR=str(data_dir),
        # The key name create_token's key was made under.
        LEDGER_ORIGIN="bench",
        # The default 200/s per token would be the figure otherwise.
        LEDGER_RATE_LIMIT="0",
        LEDGER_AUTH="tokens" if token else "off",
    )
    if access_log:
        env["LEDGER_ACCESS_LOG"] = "true"
    env.update(extra or {})
    return env


class LedgerProcess(ChildServer):
    """``ledger serve`` in a child process, as ``ledger_environment`` sets it up."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        port = free_port()
        super().__init__(
            [SERVER_PYTHON, "-m", "ledger", "serve", "--port", str(port)],
            port=port,
            log_path=log_dir / f"server-{port}.log",
            env=env,
            cwd=SERVER_ROOT,
        )


def start_ledger(
    database_url: str,
    data_dir: Path,
    *,
    token: str | None,
    access_log: bool = False,
    extra: dict[str, str] | None = None,
) -> LedgerProcess:
    data_dir.mkdir(parents=True, exist_ok=True)
    env = ledger_environment(
        database_url, data_dir, token=token is not None, access_log=access_log, extra=extra
    )
    server = LedgerProcess(env, data_dir)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(f"{server.url}/v1/ledgers", json={"name": LEDGER}, headers=headers)
    if response.status_code != 201:
        server.stop()
        raise RuntimeError(f"creating the ledger failed: {response.status_code} {response.text}")
    return server


# --- witnesses and a time-stamping authority ---------------------------------

WITNESSES = 3
# The collector's default; the TSA's is 60 s, which a run of a few seconds
# would hardly exercise, so the benchmark asks for a timestamp every second.
WITNESS_INTERVAL = 1.0
TSA_INTERVAL = 1.0


@dataclass(frozen=True)
class Trust:
    """The witnesses and the authority one ledger server is configured with."""

    env: dict[str, str]
    witnesses: list[RunningWitness]


def start_trust(directory: Path, stack: contextlib.ExitStack) -> Trust:
    """Three real witnesses and a real local RFC 3161 authority (``openssl ts``),
    each a child process, stopped with ``stack``; the log each witness follows
    is added once the ledger's origin and key exist (``follow``)."""
    witnesses = []
    for index in range(1, WITNESSES + 1):
        witness = start_witness(directory / f"witness-{index}", logs={}, name=f"bench/w{index}")
        stack.callback(witness.stop)
        witnesses.append(witness)
    authority = make_authority(directory / "tsa", "Bench TSA")
    tsa = LocalTsa(authority)
    stack.callback(tsa.stop)
    env = {
        "LEDGER_WITNESSES": json.dumps([{"url": w.url, "key": w.verifier_key} for w in witnesses]),
        "LEDGER_WITNESS_INTERVAL": str(WITNESS_INTERVAL),
        "LEDGER_TSA_URL": tsa.url,
        "LEDGER_TSA_CERTS": str(authority.chain),
        "LEDGER_TSA_INTERVAL": str(TSA_INTERVAL),
    }
    return Trust(env=env, witnesses=witnesses)


def follow(trust: Trust, server: Server, token: str) -> None:
    """Have every witness follow the server's ledger (its origin and key)."""
    headers = {"Authorization": f"Bearer {token}"}
    note = httpx.get(f"{server.url}/v1/ledgers/{LEDGER}/checkpoint", headers=headers).text
    keys = httpx.get(f"{server.url}/v1/keys", headers=headers).json()["items"]
    for witness in trust.witnesses:
        for key in keys:
            witness.add_log(note.split("\n", 1)[0], key["verifier_key"])


@dataclass(frozen=True)
class WitnessLag:
    """How far behind the head the witnessed checkpoint ran."""

    # From a checkpoint's creation to the last of its quorum's cosignatures,
    # over the checkpoints that reached the quorum during the runs.
    p50_s: float
    max_s: float
    cosigned: int
    # From the end of the last run until the witnessed checkpoint was the head.
    catch_up_s: float
    timestamps: int


def _instant(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def witness_lag(server: Server, token: str, database_url: str) -> WitnessLag:
    headers = {"Authorization": f"Bearer {token}"}
    base = f"{server.url}/v1/ledgers/{LEDGER}"
    head = int(httpx.get(f"{base}/checkpoint", headers=headers).text.split("\n")[1])
    started = time.monotonic()
    deadline = started + 30 * WITNESS_INTERVAL
    witnessed = 0
    while time.monotonic() < deadline:
        answer = httpx.get(f"{base}/checkpoint/witnessed", headers=headers)
        witnessed = int(answer.headers.get("Ledger-Tree-Size", 0)) if answer.is_success else 0
        if witnessed >= head:
            break
        time.sleep(0.05)
    catch_up = time.monotonic() - started if witnessed >= head else float("inf")
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT c.tree_size, c.created_at, s.received_at FROM checkpoints c"
                    " JOIN checkpoint_cosignatures s"
                    " ON s.ledger_id = c.ledger_id AND s.tree_size = c.tree_size"
                )
            ).all()
            timestamps = connection.execute(
                sa.text("SELECT count(*) FROM checkpoint_timestamps")
            ).scalar_one()
    finally:
        engine.dispose()
    received: dict[int, list[float]] = {}
    created: dict[int, float] = {}
    for size, made, got in rows:
        created[size] = _instant(made)
        received.setdefault(size, []).append(_instant(got))
    lags = sorted(
        max(times) - created[size] for size, times in received.items() if len(times) >= WITNESSES
    )
    if not lags:
        return WitnessLag(float("inf"), float("inf"), 0, catch_up, int(timestamps))
    return WitnessLag(
        p50_s=lags[len(lags) // 2],
        max_s=lags[-1],
        cosigned=len(lags),
        catch_up_s=catch_up,
        timestamps=int(timestamps),
    )


# --- eventsourcing, in-process ---------------------------------------------


@functools.cache
def _talks_aggregate() -> Any:
    # Defined once per process: eventsourcing refuses a second class under one topic.
    from eventsourcing.domain import Aggregate, event

    class Talks(Aggregate):
        @event("Opened")
        def __init__(self, name: str) -> None:
            self.count = 0

        @event("PositionStated")
        def state(self, party: str, topic: str, stance: str, summary: str) -> None:
            self.count += 1

    return Talks


def eventsourcing_batch_rate(backend: str, database_url: str, events: int) -> float:
    """PyPI eventsourcing storing 1000-event batches (one save each): events/s."""
    from eventsourcing.application import Application

    if backend == "sqlite":
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": sa.engine.make_url(database_url).database or "",
        }
    else:
        url = sa.engine.make_url(database_url)
        options = str(url.query.get("options", ""))
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": url.database or "",
            "POSTGRES_HOST": url.host or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": url.username or "postgres",
            "POSTGRES_PASSWORD": url.password or "",
            "POSTGRES_SCHEMA": options.removeprefix("-csearch_path="),
        }
    app: Any = Application(env=env)
    try:
        talks = _talks_aggregate()(name="bench")
        app.save(talks)
        start = time.perf_counter()
        for n in range(events):
            talks.state(
                party="US", topic="revenue-share", stance="demand", summary=f"statement {n}"
            )
            if n % 1000 == 999:
                app.save(talks)
        app.save(talks)
        elapsed = time.perf_counter() - start
    finally:
        app.close()
    return events / elapsed


# --- the suite -------------------------------------------------------------


def run_backend(
    backend: str,
    directory: Path,
    *,
    seconds: int,
    batch_seconds: int,
    es_events: int,
    rounds: int = 2,
) -> tuple[list[Run], float, WitnessLag | None]:
    """Every configuration's runs, eventsourcing's batch rate, and the witness
    lag (None when the ledger measured has no witnessed configuration)."""
    console.print(f"[bold]{BACKEND_NAMES[backend]}[/]")
    single = directory / "single.json"
    single.write_bytes(json.dumps(position_event(1)).encode())
    batch = directory / "batch.json"
    batch.write_bytes(json.dumps([position_event(n) for n in range(BATCH)]).encode())
    runs: list[Run] = []
    warmup = max(1, seconds // 3)

    def series(server: Server, app: str, *, token: str | None, with_batch: bool) -> None:
        # Not measured: fills connection pools and caches, and gets first-request costs over.
        wrk(
            server,
            f"/v1/ledgers/{LEDGER}/events",
            body_file=single,
            connections=8,
            seconds=warmup,
            token=token,
        )
        for clients in CLIENTS:
            runs.append(
                measure(
                    server,
                    backend=backend,
                    app=app,
                    body_file=single,
                    events_per_request=1,
                    connections=clients,
                    seconds=seconds,
                    token=token,
                )
            )
        if with_batch:
            runs.append(
                measure(
                    server,
                    backend=backend,
                    app=app,
                    body_file=batch,
                    events_per_request=BATCH,
                    connections=BATCH_CLIENTS,
                    seconds=batch_seconds,
                    token=token,
                )
            )

    with contextlib.ExitStack() as stack:
        ledger_url = stack.enter_context(fresh_database(backend, directory, "ledger"))
        noauth_url = stack.enter_context(fresh_database(backend, directory, "noauth"))
        logged_url = stack.enter_context(fresh_database(backend, directory, "logged"))
        naive_url = stack.enter_context(fresh_database(backend, directory, "naive"))
        data_dir = directory / "ledger"
        data_dir.mkdir()
        token = create_token(ledger_url, data_dir)
        ledger = start_ledger(ledger_url, data_dir, token=token)
        stack.callback(ledger.stop)
        noauth = start_ledger(noauth_url, directory / "noauth", token=None)
        stack.callback(noauth.stop)
        logged_dir = directory / "logged"
        logged_dir.mkdir()
        logged_token = create_token(logged_url, logged_dir)
        logged = start_ledger(logged_url, logged_dir, token=logged_token, access_log=True)
        stack.callback(logged.stop)
        servers: list[tuple[Server, str, str | None, bool]] = [
            (ledger, "ledger", token, True),
            (noauth, "ledger-noauth", None, False),
            (logged, "ledger-accesslog", logged_token, False),
        ]
        witnessed: tuple[Server, str, str] | None = None
        if SERVER_WITNESSES:
            witnessed_url = stack.enter_context(fresh_database(backend, directory, "witnessed"))
            witnessed_dir = directory / "witnessed"
            witnessed_dir.mkdir()
            witnessed_token = create_token(witnessed_url, witnessed_dir)
            trust = start_trust(directory / "trust", stack)
            witnessed_server = start_ledger(
                witnessed_url, witnessed_dir, token=witnessed_token, extra=trust.env
            )
            stack.callback(witnessed_server.stop)
            follow(trust, witnessed_server, witnessed_token)
            witnessed = (witnessed_server, witnessed_token, witnessed_url)
            servers.append((witnessed_server, "ledger-witnessed", witnessed_token, True))
        naive = AppProcess(naive_url, directory)
        stack.callback(naive.stop)
        noop = AppProcess(None, directory)
        stack.callback(noop.stop)
        servers += [(naive, "naive", None, True), (noop, "noop", None, True)]
        # Rounds interleave the servers, so a slow spell of a shared machine
        # falls on all of them; each figure is its best round (see _pick).
        for _ in range(rounds):
            for server, app, app_token, with_batch in servers:
                series(server, app, token=app_token, with_batch=with_batch)
        lag = witness_lag(*witnessed) if witnessed else None
    if lag is not None:
        console.print(
            f"  witness lag, checkpoint to a quorum of {WITNESSES}: p50 {lag.p50_s:.2f} s, "
            f"max {lag.max_s:.2f} s over {lag.cosigned} checkpoints; caught up with the head "
            f"{lag.catch_up_s:.2f} s after the load; {lag.timestamps} checkpoints timestamped"
        )
    else:
        console.print(f"  no witnessed configuration: {SERVER_ROOT} has no ledger/witness")
    with (
        fresh_database(backend, directory, "es") as url,
        console.status(f"eventsourcing: {es_events:,} events in 1000-event batches"),
    ):
        es_rate = eventsourcing_batch_rate(backend, url, es_events)
    console.print(f"  eventsourcing in-process, 1000-event batches: {es_rate:,.0f} events/s")
    return runs, es_rate, lag


def _pick(runs: list[Run], app: str, clients: int, events: int = 1) -> Run:
    """The best round of one configuration: on a shared machine, the least disturbed."""
    return max(
        (
            r
            for r in runs
            if r.app == app and r.clients == clients and r.events_per_request == events
        ),
        key=lambda r: r.rps,
    )


def add_figures(report: Report, backend: str, runs: list[Run], es_rate: float) -> None:
    name = BACKEND_NAMES[backend]
    for clients in CLIENTS:
        ledger, naive = _pick(runs, "ledger", clients), _pick(runs, "naive", clients)
        report.add(
            Figure(
                "appends",
                f"single appends @{clients} clients, {name}",
                ledger.rps,
                "appends/s",
                "naive insert, no hashing",
                naive.rps,
                True,
                ">= 1.5x naive" if clients == 32 else "",
            )
        )
    top = max(CLIENTS)
    ledger = _pick(runs, "ledger", top)
    report.add(
        Figure(
            "appends",
            f"single appends @{top} clients vs no-op, {name}",
            ledger.rps,
            "appends/s",
            "no-op endpoint (HTTP ceiling)",
            _pick(runs, "noop", top).rps,
            True,
            ">= 0.5x no-op",
        )
    )
    report.add(
        Figure(
            "appends",
            f"single appends @{top} clients, auth off, {name}",
            _pick(runs, "ledger-noauth", top).rps,
            "appends/s",
            "naive insert, no hashing",
            _pick(runs, "naive", top).rps,
            True,
            "",
        )
    )
    for clients in CLIENTS:
        report.add(
            Figure(
                "appends",
                f"single appends @{clients} clients, access log on, {name}",
                _pick(runs, "ledger-accesslog", clients).rps,
                "appends/s",
                "ledger serve as started by default (no access log)",
                _pick(runs, "ledger", clients).rps,
                True,
                "",
            )
        )
    # What logging costs is CPU: per second of the server's CPU, the figure
    # holds even when a shared machine gives the server less than a core.
    logged, default = _pick(runs, "ledger-accesslog", top), _pick(runs, "ledger", top)
    report.add(
        Figure(
            "appends",
            f"single appends @{top} clients per server CPU second, access log on, {name}",
            logged.rps / logged.server_cores,
            "appends/CPU-s",
            "ledger serve as started by default (no access log)",
            default.rps / default.server_cores,
            True,
            "",
        )
    )
    for clients in CLIENTS:
        report.add(
            Figure(
                "appends",
                f"append p99 @{clients} clients, {name}",
                _pick(runs, "ledger", clients).p99_ms,
                "ms",
                "naive insert p99",
                _pick(runs, "naive", clients).p99_ms,
                False,
                "< 50 ms" if clients == 8 else "",
            )
        )
    ledger_batch = _pick(runs, "ledger", BATCH_CLIENTS, BATCH)
    naive_batch = _pick(runs, "naive", BATCH_CLIENTS, BATCH)
    report.add(
        Figure(
            "appends",
            f"batch appends ({BATCH}/request, {BATCH_CLIENTS} clients), {name}",
            ledger_batch.events_per_s,
            "events/s",
            f"naive insert, {BATCH}/request",
            naive_batch.events_per_s,
            True,
            f">= {BATCH_TARGETS[backend]:,}/s",
        )
    )
    report.add(
        Figure(
            "appends",
            f"batch appends vs eventsourcing, {name}",
            ledger_batch.events_per_s,
            "events/s",
            "eventsourcing in-process, 1000/batch",
            es_rate,
            True,
            # The batch target, read on this machine: it was set beside
            # eventsourcing's rate on another machine.
            f">= {BATCH_TARGETS[backend] / REFERENCE_EVENTSOURCING[backend]:.2f}x "
            f"({BATCH_TARGETS[backend]:,} vs {REFERENCE_EVENTSOURCING[backend]:,})",
        )
    )
    single_rss = max(
        r.server_peak_rss_mb
        for r in runs
        if r.app == "ledger" and r.clients in CLIENTS and r.events_per_request == 1
    )
    naive_rss = max(
        r.server_peak_rss_mb for r in runs if r.app == "naive" and r.events_per_request == 1
    )
    report.add(
        Figure(
            "appends",
            f"server peak RSS, single appends, {name}",
            single_rss,
            "MB",
            "naive app",
            naive_rss,
            False,
            "",
        )
    )
    report.add(
        Figure(
            "appends",
            f"server peak RSS, batch appends, {name}",
            ledger_batch.server_peak_rss_mb,
            "MB",
            "naive app",
            naive_batch.server_peak_rss_mb,
            False,
            "",
        )
    )


def add_trust_figures(report: Report, backend: str, runs: list[Run], lag: WitnessLag) -> None:
    """Witnesses and timestamps against the same server without them, same run."""
    name = BACKEND_NAMES[backend]
    top = max(CLIENTS)
    trust = f"{WITNESSES} witnesses + TSA"
    report.add(
        Figure(
            "appends",
            f"single appends @{top} clients, {trust}, {name}",
            _pick(runs, "ledger-witnessed", top).rps,
            "appends/s",
            "ledger serve without witnesses or TSA",
            _pick(runs, "ledger", top).rps,
            True,
            ">= 0.9x",
        )
    )
    report.add(
        Figure(
            "appends",
            f"batch appends ({BATCH}/request, {BATCH_CLIENTS} clients), {trust}, {name}",
            _pick(runs, "ledger-witnessed", BATCH_CLIENTS, BATCH).events_per_s,
            "events/s",
            "ledger serve without witnesses or TSA",
            _pick(runs, "ledger", BATCH_CLIENTS, BATCH).events_per_s,
            True,
            ">= 0.9x",
        )
    )
    report.add(
        Figure(
            "appends",
            f"witness lag p50, checkpoint to a quorum of {WITNESSES}, {name}",
            lag.p50_s,
            "s",
            "the submission interval",
            WITNESS_INTERVAL,
            False,
            "",
        )
    )
    report.add(
        Figure(
            "appends",
            f"witnessed head after the load stops, {name}",
            lag.catch_up_s,
            "s",
            "the submission interval",
            WITNESS_INTERVAL,
            False,
            "",
        )
    )


def chart(runs: list[Run], path: Path) -> None:
    """Throughput and p99 against concurrent clients, one column per backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backends = [b for b in BACKEND_NAMES if any(r.backend == b for r in runs)]
    figure, axes = plt.subplots(2, len(backends), figsize=(6 * len(backends), 8), squeeze=False)
    styles = {
        "ledger": ("ledger (bearer token)", "C0", "-"),
        "ledger-noauth": ("ledger (auth off)", "C0", "--"),
        "ledger-accesslog": ("ledger (access log on)", "C3", "-."),
        "naive": ("naive insert, no hashing", "C1", "-"),
        "noop": ("no-op endpoint", "C2", ":"),
    }
    for column, backend in enumerate(backends):
        for app, (label, colour, line) in styles.items():
            mine = [r for r in runs if r.backend == backend and r.app == app]
            if not any(r.events_per_request == 1 for r in mine):
                continue
            series = [_pick(mine, app, clients) for clients in CLIENTS]
            clients = [r.clients for r in series]
            axes[0][column].plot(
                clients, [r.rps for r in series], line, color=colour, marker="o", label=label
            )
            axes[1][column].plot(
                clients, [r.p99_ms for r in series], line, color=colour, marker="o", label=label
            )
        axes[0][column].set_title(f"single-event appends, {BACKEND_NAMES[backend]}")
        axes[0][column].set_ylabel("requests/s")
        axes[1][column].set_ylabel("p99 latency (ms)")
        axes[1][column].axhline(50, color="grey", linewidth=0.8, linestyle="-.")
        for row in (0, 1):
            axis = axes[row][column]
            axis.set_xscale("log", base=2)
            axis.set_yscale("log")
            axis.set_xticks(list(CLIENTS), [str(c) for c in CLIENTS])
            axis.set_xlabel("concurrent clients (wrk connections)")
            axis.grid(True, which="both", alpha=0.3)
            axis.legend(fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def run(
    report: Report,
    *,
    seconds: int = 6,
    batch_seconds: int = 10,
    es_events: int = 50_000,
    rounds: int = 2,
    backends: tuple[str, ...] = ("sqlite", "postgresql"),
) -> None:
    console.rule("appends")
    console.print(
        f"wrk pinned to CPU {_WRK_CPUS or '(none)'}, servers unpinned; "
        f"{seconds}s per run, batches {batch_seconds}s, {rounds} interleaved rounds (best kept)"
    )
    all_runs: list[Run] = []
    es_rates: dict[str, float] = {}
    lags: dict[str, dict[str, float]] = {}
    for backend in reachable_backends(backends):
        with tempfile.TemporaryDirectory(prefix="ledger-bench-appends-") as tmp:
            runs, es_rate, lag = run_backend(
                backend,
                Path(tmp),
                seconds=seconds,
                batch_seconds=batch_seconds,
                es_events=es_events,
                rounds=rounds,
            )
        all_runs += runs
        es_rates[backend] = es_rate
        add_figures(report, backend, runs, es_rate)
        if lag is not None:
            add_trust_figures(report, backend, runs, lag)
            lags[backend] = asdict(lag)
    if not all_runs:
        return
    RESULTS_DIR.mkdir(exist_ok=True)
    details = {
        "server_root": str(SERVER_ROOT),
        "wrk_cpus": _WRK_CPUS,
        "runs": [{**asdict(r), "events_per_s": r.events_per_s} for r in all_runs],
        "eventsourcing_batch_events_per_s": es_rates,
        "witness_lag": lags,
    }
    (RESULTS_DIR / "appends.json").write_text(json.dumps(details, indent=2))
    chart(all_runs, RESULTS_DIR / "appends.png")
    console.print(f"runs written to {RESULTS_DIR / 'appends.json'}, chart to appends.png")
