"""Artifact registration over HTTP: requests/s and p50/p95/p99 latency of POST /api/v1/artifacts/ under
N concurrent keep-alive clients (new builds, then the same builds again), and of a bare Django view that
inserts one row (the floor of our stack: gunicorn + Django + PostgreSQL, no DRF, no auth), with the ratio.

    .venv/bin/python bench/register_artifacts.py [--clients 8] [--requests 400] [--workers 2] [--threads 4]
    DATABASE_URL=postgres://user:pw@dbhost:5432/anything .venv/bin/python bench/register_artifacts.py --clients 16

(`make bench` runs it with the defaults: about 20 s on 2 cores.) --requests is the number of requests per
phase, in total, shared evenly between the clients. Needs PostgreSQL: the server of DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/); exits with 2 and says so when it cannot reach it. Creates a throw-away
database there (releasehub_bench_<pid>), migrates it, and drops it at the end, even on failure or Ctrl-C;
your own database is never touched. gunicorn runs releasehub.wsgi with bench.floor.settings
(releasehub.settings from the environment plus the floor app; throttling lifted, locmem cache, DEBUG off),
bound to a free port on 127.0.0.1. Each phase spreads the clients' connections evenly over the workers (a
keep-alive connection stays with the worker that accepted it). Clients, server and database share the
machine's CPUs: run it on an otherwise idle machine (it warns when other processes were busy), and several
times: figures of runs this short vary by 10-20 %.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/"
POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql", "psql", "postgis"}
ARTIFACTS = "/api/v1/artifacts/"
FLOOR = "/bench/floor/"
APPLICATION = "bench-app"
JSON = {"Content-Type": "application/json"}
BUSY = 0.15  # CPU use by other processes, before or after the run, above which the figures are flagged

# Runs in a subprocess with the bench settings and the throw-away database: setup goes through the services.
SETUP = """
import json, secrets, sys
import django
django.setup()
from apps.accounts.services import team_add_member, team_create, token_create, user_ensure
from apps.catalog.services import application_create
team = team_create(actor=None, name="Bench team", slug="bench")
user, _ = user_ensure(username="bench-ci", password=secrets.token_urlsafe(16))
team_add_member(actor=None, team=team, user=user)
application_create(actor=None, slug=sys.argv[1], name="Bench application", owner_team=team)
_, raw = token_create(user=user, name="bench", scopes=["artifacts:write"])
print(json.dumps({"token": raw}))
"""


class BenchError(Exception):
    """A setup step failed: the message says which."""


# --- The throw-away database ------------------------------------------------------------------


def server_url() -> tuple[str, str]:
    """The PostgreSQL server to use (URL without a database name) and a note on where it came from."""
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        return DEFAULT_SERVER, "default"
    parts = urlsplit(url)
    if parts.scheme not in POSTGRES_SCHEMES:
        return DEFAULT_SERVER, f"DATABASE_URL is {parts.scheme or '?'}://, not PostgreSQL: default"
    return urlunsplit((parts.scheme, parts.netloc, "/", parts.query, "")), "server of DATABASE_URL"


def with_database(server: str, name: str, scheme: str | None = None) -> str:
    parts = urlsplit(server)
    return urlunsplit((scheme or parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def admin_connect(server: str):
    """An autocommit connection to the server's maintenance database (postgres, else template1)."""
    import psycopg

    last: Exception | None = None
    for maintenance in ("postgres", "template1"):
        try:
            return psycopg.connect(with_database(server, maintenance, "postgresql"), autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as exc:
            last = exc
    raise BenchError(f"PostgreSQL is unreachable at {redact(server)}: {str(last).strip()}")


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, f"{parts.username}:***@{host}", parts.path, parts.query, ""))
    return url


def create_database(server: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with admin_connect(server) as conn:
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.Error as exc:
            raise BenchError(f"cannot create database {name} on {redact(server)}: {str(exc).strip()}") from exc


def drop_database(server: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with admin_connect(server) as conn:
        try:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        except psycopg.errors.SyntaxError:  # PostgreSQL < 13: end the sessions, then drop
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


# --- The server ---------------------------------------------------------------------------------


def server_environment(database_url: str, var_dir: str) -> dict[str, str]:
    """The environment of manage.py, the setup and gunicorn: yours, with what the benchmark must control."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.floor.settings",
            "DATABASE_URL": database_url,
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
            "RELEASEHUB_VAR_DIR": var_dir,  # secrets, static root and broker folders: not in your var/
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            "API_TOKEN_RATE": "1000000/min",  # throttling must never answer 429 here
            "API_USER_RATE": "1000000/min",
            "CACHE_URL": "locmemcache://releasehub-bench",
            "CELERY_BROKER_URL": "filesystem://localhost//",
        }
    )
    env.setdefault("LOG_LEVEL", "WARNING")
    return env


def run(args: list[str], env: dict[str, str], what: str) -> str:
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"{what} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(env: dict[str, str], port: int, workers: int, threads: int, log: Path) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "releasehub.wsgi:application",
        "--chdir",
        str(ROOT),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--worker-class",
        "gthread" if threads > 1 else "sync",
        "--log-level",
        "warning",
    ]
    with log.open("w") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_healthy(process: subprocess.Popen, port: int, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"gunicorn exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.1)
    raise BenchError(f"gunicorn did not answer /healthz within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- The clients ----------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies_ms) + len(self.errors)

    @property
    def throughput(self) -> float:
        return self.requests / self.wall if self.wall else 0.0

    def percentiles(self) -> tuple[float, float, float]:
        if len(self.latencies_ms) < 2:
            value = self.latencies_ms[0] if self.latencies_ms else float("nan")
            return value, value, value
        q = statistics.quantiles(self.latencies_ms, n=100, method="inclusive")
        return q[49], q[94], q[98]


def artifact_body(version: str) -> bytes:
    return json.dumps(
        {
            "application": APPLICATION,
            "version": version,
            "digest": f"sha256:{secrets.token_hex(32)}",
            "uri": f"https://artifacts.example.com/{APPLICATION}/{version}.tar.gz",
            "commit": secrets.token_hex(20),
            "branch": "main",
            "build_url": "https://ci.example.com/builds/1",
            "labels": {"team": "bench"},
        }
    ).encode()


@dataclass
class Load:
    """N keep-alive clients against one server: `run` sends bodies (client i sends bodies[i::clients])."""

    port: int
    clients: int
    workers: int

    def connect(self, owners: Counter, lock: threading.Lock) -> http.client.HTTPConnection:
        """A keep-alive connection to a gunicorn worker that holds at most its share of the clients' connections.

        A connection stays with the worker that accepted it, and which one accepts is luck: unbalanced
        connections would measure one worker's GIL rather than the server. The floor view names its worker.
        """
        share = -(-self.clients // self.workers)
        for _ in range(100):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            conn.request("POST", FLOOR, body=b'{"version": "handshake"}', headers=JSON)
            response = conn.getresponse()
            worker = json.loads(response.read())["worker"]
            if response.will_close:  # no keep-alive (sync workers): every request connects anew
                return conn
            with lock:
                if owners[worker] < share:
                    owners[worker] += 1
                    return conn
            conn.close()
        raise BenchError(f"could not spread {self.clients} connections over {self.workers} workers")

    def run(self, name: str, path: str, bodies: list[bytes], expect: set[int], headers: dict[str, str]) -> Phase:
        phase = Phase(name)
        lock = threading.Lock()
        owners: Counter = Counter()
        start = threading.Barrier(self.clients + 1, timeout=120)
        headers = {**JSON, **headers}

        def client(mine: list[bytes]) -> None:
            timings, errors = [], []
            try:
                conn = self.connect(owners, lock)
            except (OSError, http.client.HTTPException, ValueError, KeyError, BenchError) as exc:
                errors.append(f"connect: {type(exc).__name__}: {exc}")
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            start.wait()
            for body in mine:
                began = time.perf_counter()
                try:
                    conn.request("POST", path, body=body, headers=headers)
                    response = conn.getresponse()
                    payload = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    conn.close()  # the next request reconnects
                    continue
                if response.status in expect:
                    timings.append((time.perf_counter() - began) * 1000)
                else:
                    errors.append(f"HTTP {response.status}: {payload[:200].decode(errors='replace')}")
            conn.close()
            with lock:
                phase.latencies_ms.extend(timings)
                phase.errors.extend(errors)

        threads = [
            threading.Thread(target=client, args=(bodies[i :: self.clients],), daemon=True) for i in range(self.clients)
        ]
        for thread in threads:
            thread.start()
        start.wait()
        began = time.perf_counter()
        for thread in threads:
            thread.join()
        phase.wall = time.perf_counter() - began
        return phase


def report(phases: list[Phase]) -> None:
    print(f"{'phase':<10} {'requests':>8} {'errors':>6} {'wall s':>7} {'req/s':>7}", end="")
    print(f" {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}")
    for p in phases:
        p50, p95, p99 = p.percentiles()
        print(
            f"{p.name:<10} {p.requests:>8} {len(p.errors):>6} {p.wall:>7.2f} {p.throughput:>7.0f}"
            f" {p50:>7.1f} {p95:>7.1f} {p99:>7.1f}"
        )
    floor = phases[-1]
    for p in phases[:-1]:
        print(
            f"{p.name}/floor: throughput {p.throughput / floor.throughput:.2f}x,"
            f" p50 latency {p.percentiles()[0] / floor.percentiles()[0]:.1f}x"
        )
    for p in phases:
        if p.errors:
            shown = sorted(set(p.errors))[:5]
            print(f"{p.name}: {len(p.errors)} errors, e.g.: " + " | ".join(shown))


# --- Main -----------------------------------------------------------------------------------------


def cpu_busy(seconds: float = 1.0) -> float | None:
    """The fraction of CPU time the machine spent busy over `seconds` (Linux /proc/stat; None elsewhere)."""

    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1 - (idle1 - idle0) / max(total1 - total0, 1)


def _interrupted(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent keep-alive clients (default 8)")
    parser.add_argument(
        "--requests", type=int, default=400, help="requests per phase, in total over all clients (default 400)"
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2, as Procfile)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (default 4, as Procfile)")
    parser.add_argument("--warmup", type=int, default=4, help="unmeasured requests per client and endpoint (default 4)")
    args = parser.parse_args()
    if args.clients < 1 or args.requests < args.clients:
        parser.error("need --clients >= 1 and --requests >= --clients")
    signal.signal(signal.SIGTERM, _interrupted)

    server, origin = server_url()
    name = f"releasehub_bench_{os.getpid()}"
    var_dir = tempfile.mkdtemp(prefix="releasehub-bench-")
    gunicorn: subprocess.Popen | None = None
    created = False
    try:
        create_database(server, name)
        created = True
        env = server_environment(with_database(server, name), var_dir)
        began = time.perf_counter()
        run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], env, "manage.py migrate")
        setup = run([sys.executable, "-c", SETUP, APPLICATION], env, "setup")
        token = json.loads(setup.strip().splitlines()[-1])["token"]
        busy_before = cpu_busy()
        port = free_port()
        log = Path(var_dir) / "gunicorn.log"
        gunicorn = start_gunicorn(env, port, args.workers, args.threads, log)
        wait_healthy(gunicorn, port, log)
        print(
            f"database: {name} on {redact(server)} ({origin}), migrated and set up in"
            f" {time.perf_counter() - began:.1f} s (dropped at the end)"
        )
        print(
            f"gunicorn: {args.workers} workers x {args.threads} threads on 127.0.0.1:{port};"
            f" {args.clients} keep-alive clients, {args.requests} requests per phase; {os.cpu_count()} CPUs"
        )

        load = Load(port, args.clients, args.workers)
        auth = {"Authorization": f"Bearer {token}"}
        warm = args.warmup * args.clients
        for phase in (
            load.run("warm-up", ARTIFACTS, [artifact_body(f"0.0.{i}") for i in range(warm)], {201}, auth),
            load.run("warm-up", FLOOR, [b'{"version": "0"}'] * warm, {200, 201}, {}),
        ):
            if phase.errors:
                raise BenchError(f"warm-up failed: {len(phase.errors)} errors, e.g. {phase.errors[0]}")

        bodies = [artifact_body(f"1.0.{i}") for i in range(args.requests)]
        phases = [
            load.run("register", ARTIFACTS, bodies, {201}, auth),
            load.run("repeat", ARTIFACTS, bodies, {200}, auth),
            load.run("floor", FLOOR, [b'{"version": "1.0.0"}'] * args.requests, {200, 201}, {}),
        ]
        if gunicorn.poll() is not None:
            raise BenchError(f"gunicorn died during the run:\n{log.read_text()[-3000:]}")
        report(phases)
        busy = {"before": busy_before, "after": cpu_busy()}  # gunicorn is idle now: any load is someone else's
        if any(b is not None and b > BUSY for b in busy.values()):
            shown = ", ".join(f"{b:.0%} {when}" for when, b in busy.items() if b is not None)
            print(f"warning: other processes kept the CPUs busy ({shown} the run): these figures are low")
        return 1 if any(p.errors for p in phases) else 0
    except BenchError as exc:
        print(f"register_artifacts: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("register_artifacts: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the clean-up
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop(gunicorn)
        if created:
            try:
                drop_database(server, name)
            except Exception as exc:  # say so: the figures printed above are still valid
                print(f"register_artifacts: could not drop database {name}: {exc}", file=sys.stderr)
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
