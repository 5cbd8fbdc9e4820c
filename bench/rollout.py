"""Canary rollouts: a canary over 100 directory targets in 3 stages (10% -> 50% -> 100%) with short pauses, run by
a Celery worker on Redis, against a local HTTP server answering each target's health check.

1. A healthy canary: wall time from request to success, against the sum of its pauses (the rest is overhead).
2. A canary whose targets start answering 500 during the first stage's analysis, at a random moment: the
   time from the first failing probe the server answered to the analysis failing (detection), and to the
   deployment being rolled back (the canary targets' `current` links switched back), against the floor:
   the probe interval, the longest a failure can wait to be probed at all.

    .venv/bin/python bench/rollout.py [--targets 100] [--interval 0.5] [--repeat 5]

(`make bench` runs it with the defaults: about a minute on 2 idle cores.) Needs PostgreSQL and Redis as
bench/engine.py does (a throw-away database on the server of DATABASE_URL, keys prefixed
releasehub-bench-<pid>: on CELERY_BROKER_URL or redis://127.0.0.1:6379/0, all removed at the end; exits
with 2 when either is unreachable). One worker: celery --pool solo, bench.floor.settings; no beat runs,
so every wait is the delayed message the engine sends for it. The step is release_dir with a small
file:// tar.gz; the analysis probes every canary target each round (16 at a time) with
max_failure_ratio 0, so the first failing round fails the stage.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tarfile
import tempfile
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.engine import broker_url, flush_prefix, redis_client, start_worker, wait_answering  # noqa: E402
from bench.register_artifacts import (  # noqa: E402
    BUSY,
    BenchError,
    _interrupted,
    cpu_busy,
    create_database,
    drop_database,
    redact,
    run,
    server_environment,
    server_url,
    stop,
    with_database,
)

APPLICATION = "bench-app"
TEMPLATE = "bench-release-dir"
ENVIRONMENT = "bench-canary"
FINAL = {"succeeded", "failed", "cancelled", "rolled_back", "rejected"}
POLL = 0.02

# Runs in a subprocess with the bench settings and the throw-away database: setup goes through the services.
SETUP = """
import json, os, sys
import django
django.setup()
from apps.accounts.services import team_add_member, team_create, user_ensure
from apps.catalog.services import application_create, artifact_register
from apps.deployments.services import template_create
from apps.environments.services import environment_create, target_create
from apps.releases.services import release_create
application, template, environment, root, health, count, artifacts = sys.argv[1:8]
team = team_create(actor=None, name="Bench team", slug="bench")
user, _ = user_ensure(username="bench-ci", password=os.urandom(16).hex())
team_add_member(actor=None, team=team, user=user)
app = application_create(actor=None, slug=application, name="Bench application", owner_team=team)
for version, (uri, digest) in json.loads(artifacts).items():
    artifact, _ = artifact_register(actor=user, application=application, version=version, digest=digest, uri=uri)
    release_create(actor=None, application=app, artifacts=[artifact])
template_create(actor=None, slug=template, name="Release directory",
                steps=[{"name": "Install", "kind": "release_dir", "params": {"keep": 2}}])
env = environment_create(actor=None, slug=environment, name=environment, owner_team=team)
for i in range(1, int(count) + 1):
    name = f"t{i:03d}"
    target_create(actor=None, environment=env, name=name, address="127.0.0.1", path=os.path.join(root, name),
                  health_check_url=f"{health}/{name}")
"""


class RunFailed(Exception):
    """A deployment did not end as it should: the figures would be wrong."""


class Health(ThreadingHTTPServer):
    """Answers GET /<target>: 200, or 500 for the targets in `failing` once `failing_since` is set; remembers
    the wall-clock time of the first 500 it answered."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.failing: set[str] = set()
        self.first_failure: float | None = None
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Health

    def do_GET(self) -> None:
        status = 500 if self.path.lstrip("/") in self.server.failing else 200
        if status == 500:
            with self.server.lock:
                self.server.first_failure = self.server.first_failure or time.time()
        body = b"down" if status == 500 else b"ok"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def artifact(root: Path, version: str) -> tuple[str, str]:
    """A small tar.gz of the version: its file:// URI and digest."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        data = version.encode()
        info = tarfile.TarInfo("VERSION")
        info.size, info.mtime = len(data), 0
        archive.addfile(info, io.BytesIO(data))
    path = root / f"{APPLICATION}-{version}.tar.gz"
    path.write_bytes(buffer.getvalue())
    return path.as_uri(), "sha256:" + hashlib.sha256(buffer.getvalue()).hexdigest()


def wait_final(pk: int, timeout: float):
    from apps.deployments.models import Deployment

    deadline = time.monotonic() + timeout
    while (deployment := Deployment.objects.get(pk=pk)).status not in FINAL:
        if time.monotonic() > deadline:
            raise RunFailed(f"deployment {pk} did not end within {timeout:.0f} s ({deployment.status})")
        time.sleep(POLL)
    return deployment


def canary(environment, release, template, stages: list[dict], interval: float):
    from apps.deployments.services import deployment_create

    return deployment_create(
        actor=None,
        release=release,
        environment=environment,
        template=template,
        strategy="canary",
        override_reason="A benchmark deploys the release again after each rollback.",
        strategy_options={
            "stages": stages,
            "health_gate": False,
            "analysis": {"interval": interval, "max_failure_ratio": 0},
        },
    )


def seconds_between(wall: float, moment: datetime) -> float:
    return moment.timestamp() - wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=100, help="directory targets (default 100)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between probe rounds (default 0.5)")
    parser.add_argument("--pause", type=float, default=2, help="seconds each healthy stage is analysed (default 2)")
    parser.add_argument("--repeat", type=int, default=5, help="failing canaries (default 5)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds a deployment may take at most")
    args = parser.parse_args()
    if args.targets < 10 or args.repeat < 1 or args.interval <= 0:
        parser.error("need --targets >= 10, --repeat >= 1 and --interval > 0")
    signal.signal(signal.SIGTERM, _interrupted)

    server, origin = server_url()
    redis_url, redis_origin = broker_url()
    name = f"releasehub_bench_{os.getpid()}"
    prefix = f"releasehub-bench-{os.getpid()}:"
    var_dir = Path(tempfile.mkdtemp(prefix="releasehub-bench-"))
    health = Health()
    threading.Thread(target=health.serve_forever, daemon=True).start()
    worker = None
    log = var_dir / "worker.log"
    redis = None
    created = False
    try:
        redis = redis_client(redis_url)
        create_database(server, name)
        created = True
        env = server_environment(with_database(server, name), str(var_dir))
        env.update({"CELERY_BROKER_URL": redis_url, "BENCH_REDIS_KEYPREFIX": prefix})
        run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], env, "manage.py migrate")
        artifacts = {version: artifact(var_dir, version) for version in ("1.0.0", "2.0.0")}
        run(
            [
                sys.executable,
                "-c",
                SETUP,
                APPLICATION,
                TEMPLATE,
                ENVIRONMENT,
                str(var_dir / "targets"),
                health.url,
                str(args.targets),
                json.dumps(artifacts),
            ],
            env,
            "setup",
        )
        os.environ.update(env)
        import django

        django.setup()
        from apps.deployments.models import DeploymentTemplate, StepRun
        from apps.deployments.services import deployment_create
        from apps.environments.models import Environment
        from apps.releases.models import Release

        environment = Environment.objects.get(slug=ENVIRONMENT)
        template = DeploymentTemplate.objects.get(slug=TEMPLATE)
        releases = {r.version: r for r in Release.objects.filter(application__slug=APPLICATION)}
        worker_name = f"bench1@{os.uname().nodename}"
        worker = start_worker(env, worker_name, log)
        wait_answering({worker_name: worker}, {worker_name: log})
        print(
            f"database: {name} on {redact(server)} ({origin}); broker: {redact(redis_url)} ({redis_origin}); one worker"
            f" (celery --pool solo); {args.targets} directory targets; {os.cpu_count()} CPUs"
        )
        busy_before = cpu_busy()

        baseline = deployment_create(
            actor=None,
            release=releases["1.0.0"],
            environment=environment,
            template=template,
            strategy="all_at_once",
            strategy_options={"health_gate": False},
        )
        if (baseline := wait_final(baseline.pk, args.timeout)).status != "succeeded":
            raise RunFailed(f"the baseline deployment ended {baseline.status}: {baseline.status_reason}")

        # 1. A healthy canary to 100%.
        stages = [{"weight": 10, "pause": int(args.pause)}, {"weight": 50, "pause": int(args.pause)}, {"weight": 100}]
        healthy = wait_final(canary(environment, releases["2.0.0"], template, stages, args.interval).pk, args.timeout)
        if healthy.status != "succeeded":
            raise RunFailed(f"the healthy canary ended {healthy.status}: {healthy.status_reason}")
        wall = (healthy.finished_at - healthy.created_at).total_seconds()
        rounds = StepRun.objects.filter(deployment=healthy, kind="analysis").values_list("state", flat=True)
        probes = sum(len(state["samples"]) for state in rounds)
        pauses = 2 * int(args.pause)
        print(
            f"healthy canary 10% -> 50% -> 100% with {int(args.pause)} s pauses: {wall:.2f} s from request to success,"
            f" {pauses} s of it pauses, {wall - pauses:.2f} s the rest ({args.targets} targets installed,"
            f" {probes} probe rounds at {args.interval:g} s)"
        )
        back = deployment_create(
            actor=None,
            release=releases["1.0.0"],
            environment=environment,
            template=template,
            strategy="all_at_once",
            strategy_options={"health_gate": False},
        )
        wait_final(back.pk, args.timeout)

        # 2. Canaries that start failing during the first stage's analysis.
        failing_stages = [{"weight": 10, "pause": 60}, {"weight": 50, "pause": 60}, {"weight": 100}]
        onset_to_probe, detection, to_rollback = [], [], []
        for _ in range(args.repeat):
            health.failing, health.first_failure = set(), None
            deployment = canary(environment, releases["2.0.0"], template, failing_stages, args.interval)
            canaries = deployment.plan["phases"][0]["targets"]
            while not StepRun.objects.filter(deployment=deployment, kind="analysis").exists():
                time.sleep(POLL)
            time.sleep(random.uniform(0.5, 0.5 + 2 * args.interval))  # the failure starts at a random moment
            onset = time.time()
            health.failing = set(canaries)
            done = wait_final(deployment.pk, args.timeout)
            if done.status != "rolled_back":
                raise RunFailed(f"the failing canary ended {done.status}: {done.status_reason}")
            touched = set(
                StepRun.objects.filter(deployment=done).exclude(target_name="").values_list("target_name", flat=True)
            )
            if touched - set(canaries):
                raise RunFailed(f"targets outside the canary were touched: {sorted(touched - set(canaries))}")
            links = {
                os.readlink(var_dir / "targets" / t / "current")
                for t in environment.targets.values_list("name", flat=True)
            }
            if links != {"releases/1.0.0"}:
                raise RunFailed(f"after the rollback, targets point at {sorted(links)}")
            failed = StepRun.objects.get(deployment=done, kind="analysis")
            first = health.first_failure
            onset_to_probe.append(first - onset)
            detection.append(seconds_between(first, failed.finished_at))
            to_rollback.append(seconds_between(first, done.finished_at))
        busy_after = cpu_busy()

        def line(label: str, values: list[float]) -> str:
            return f"{label}: median {statistics.median(values) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"

        runs = f"{args.repeat} runs, probe interval {args.interval:g} s"
        print(f"failing canary, stage 1 ({len(canaries)} targets), {runs}:")
        print("  " + line("failure onset -> first failing probe", onset_to_probe))
        print("  " + line("first failing probe -> analysis failed (detection)", detection))
        print("  " + line("first failing probe -> rolled back (time-to-rollback)", to_rollback))
        print(
            f"  floor: the probe interval, {args.interval * 1000:.0f} ms (a failure waits up to one interval to be"
            f" probed); time-to-rollback is {statistics.median(to_rollback) / args.interval:.2f}x it (median)"
        )
        if any(b is not None and b > BUSY for b in (busy_before, busy_after)):
            print("warning: other processes kept the CPUs busy: these figures are high")
        return 0
    except BenchError as exc:
        print(f"rollout: {exc}", file=sys.stderr)
        return 2
    except RunFailed as exc:
        print(f"rollout: {exc}", file=sys.stderr)
        if log.exists():
            print(f"--- worker log:\n{log.read_text()[-3000:]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rollout: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop(worker)
        health.shutdown()
        if "django.db" in sys.modules and sys.modules["django"].apps.apps.ready:
            sys.modules["django.db"].connections.close_all()
        if created:
            try:
                drop_database(server, name)
            except Exception as exc:
                print(f"rollout: could not drop database {name}: {exc}", file=sys.stderr)
        if redis is not None:
            try:
                flush_prefix(redis, prefix)
            except Exception as exc:
                print(f"rollout: could not delete the Redis keys {prefix}*: {exc}", file=sys.stderr)
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
