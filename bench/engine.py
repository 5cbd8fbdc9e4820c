"""Deployment engine overhead: a rolling deployment over 200 directory targets (batches of 20, one trivial
step per target) run by 1, then 2 Celery worker processes on Redis, and the orchestration overhead per
target-step ((wall time - step time) / target-steps) against the floor of the same broker and workers: a
bare chain of no-op Celery tasks (bench.floor.tasks), with the ratio.

    .venv/bin/python bench/engine.py [--targets 200] [--batch 20] [--repeat 3]
    CELERY_BROKER_URL=redis://redishost:6379/3 DATABASE_URL=postgres://dbhost:5432/x .venv/bin/python bench/engine.py

(`make bench` runs it with the defaults: about 35 s on 2 idle cores.) Needs PostgreSQL, as
bench/register_artifacts.py: a throw-away database (releasehub_bench_<pid>) on the server of DATABASE_URL
(default postgres://postgres@127.0.0.1:5432/), migrated, set up through the services in a subprocess, and
dropped at the end, even on failure or Ctrl-C. Needs Redis: CELERY_BROKER_URL when it is redis://, else
redis://127.0.0.1:6379/0; every key the benchmark makes there is prefixed releasehub-bench-<pid>: (kombu's
global_keyprefix, set by bench.floor.settings) and deleted at the end. Exits with 2 and says so when either
is unreachable.

The workers are `celery -A releasehub worker --pool solo --concurrency 1` processes with bench.floor.settings
(the Procfile runs one worker with --pool threads --concurrency 4; solo processes keep the GIL out of the
figures); no beat runs.
The step is `shell` with the command `true`, run in the target's directory: the cheapest per-target kind
that really runs something (a fork and exec). Step time is the sum of the StepRuns' finished_at -
started_at; a StepRun's interval also covers the engine's own queries around the command (the run saved
as running, the lease extended, the secrets read), so the bare command is also timed in this process,
and an in-process pass counts the SQL statements per unit of work. The units of one deployment run one
after the other (one lease per deployment): a second worker cannot make one deployment faster, only
run two at once (the last line, two environments). Everything shares the machine's CPUs: run it on an
otherwise idle machine (it warns when other processes were busy), and more than once.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

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

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
APPLICATION = "bench-app"
TEMPLATE = "bench-noop"
ENVIRONMENTS = ("bench-a", "bench-b")  # the second one only for two deployments at once
WARM = "bench-warm"
STEP = {"name": "noop", "kind": "shell", "params": {"command": "true"}}
FINAL = {"succeeded", "failed", "cancelled", "rolled_back", "rejected"}
POLL = 0.05  # seconds between looks at the deployments' status (the figures come from their timestamps)

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
application, template, step, root, environments = sys.argv[1:6]
team = team_create(actor=None, name="Bench team", slug="bench")
user, _ = user_ensure(username="bench-ci", password=os.urandom(16).hex())
team_add_member(actor=None, team=team, user=user)
app = application_create(actor=None, slug=application, name="Bench application", owner_team=team)
artifact, _ = artifact_register(
    actor=user, application=application, version="1.0.0", digest="sha256:" + "ab" * 32,
    uri=f"https://artifacts.example.com/{application}/1.0.0.tar.gz",
)
release_create(actor=None, application=app, artifacts=[artifact])
template_create(actor=None, slug=template, name="No-op", steps=[json.loads(step)])
for slug, count in json.loads(environments):
    environment = environment_create(actor=None, slug=slug, name=slug, owner_team=team)
    for i in range(1, count + 1):
        path = os.path.join(root, slug, f"t{i:03d}")
        os.makedirs(path)
        target_create(actor=None, environment=environment, name=f"t{i:03d}", address="127.0.0.1", path=path)
"""


class RunFailed(Exception):
    """A deployment or a chain did not end as it should: the figures would be wrong."""


# --- Redis ----------------------------------------------------------------------------------------------


def broker_url() -> tuple[str, str]:
    """The Redis to use and a note on where it came from."""
    url = os.environ.get("CELERY_BROKER_URL", "")
    if urlsplit(url).scheme in ("redis", "rediss"):
        return url, "CELERY_BROKER_URL"
    return DEFAULT_REDIS, "default"


def redis_client(url: str):
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise BenchError(f"Redis is unreachable at {redact(url)}: {exc}") from exc
    return client


def flush_prefix(client, prefix: str) -> int:
    """Delete every key under the benchmark's prefix; returns how many."""
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    return len(keys)


# --- Workers --------------------------------------------------------------------------------------------


def start_worker(env: dict[str, str], name: str, log: Path) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "releasehub",
        "worker",
        "--pool",
        "solo",
        "--concurrency",
        "1",
        "-Q",
        "celery",
        "--without-mingle",
        "--without-gossip",
        "--hostname",
        name,
        "--loglevel",
        "WARNING",
    ]
    with log.open("w") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_answering(workers: dict[str, subprocess.Popen], logs: dict[str, Path], timeout: float = 60) -> None:
    """Until every worker answers a control ping."""
    from releasehub.celery import app

    deadline = time.monotonic() + timeout
    waiting = set(workers)
    while time.monotonic() < deadline:
        for name in waiting:
            if workers[name].poll() is not None:
                log = logs[name].read_text()[-3000:]
                raise BenchError(f"worker {name} exited with {workers[name].returncode}:\n{log}")
        for reply in app.control.ping(destination=sorted(waiting), timeout=0.5) or []:
            waiting -= set(reply)
        if not waiting:
            return
    raise BenchError(f"workers {', '.join(sorted(waiting))} did not answer a ping within {timeout:.0f} s")


# --- Measuring ------------------------------------------------------------------------------------------


@dataclass
class Figures:
    wall: float  # s: first created_at to last finished_at
    start: float  # s: created_at to started_at (of the first deployment)
    first_step: float  # s: created_at to the first StepRun's started_at (the first broker hop included)
    step: float  # s: sum of StepRun intervals
    target_steps: int

    @property
    def overhead(self) -> float:
        return (self.wall - self.step) / self.target_steps

    @property
    def rate(self) -> float:
        return self.target_steps / self.wall


def deploy(environments: list, release, template, batch: int, timeout: float) -> Figures:
    """Deployments of the release to each environment, at once; their figures once all have ended."""
    from apps.deployments.models import Deployment, StepRun
    from apps.deployments.services import deployment_create

    created = [
        deployment_create(
            actor=None,
            release=release,
            environment=environment,
            strategy="rolling",
            strategy_options={"batch_size": batch, "health_gate": False},
            template=template,
        )
        for environment in environments
    ]
    ids = [d.pk for d in created]
    deadline = time.monotonic() + timeout
    while Deployment.objects.filter(pk__in=ids).exclude(status__in=FINAL).exists():
        if time.monotonic() > deadline:
            raise RunFailed(f"deployments {ids} did not end within {timeout:.0f} s")
        time.sleep(POLL)
    done = list(Deployment.objects.filter(pk__in=ids).order_by("pk"))
    for d in done:
        if d.status != "succeeded":
            raise RunFailed(f"deployment {d.pk} to {d.environment.slug} ended {d.status}: {d.status_reason}")
    runs = list(StepRun.objects.filter(deployment_id__in=ids).values_list("started_at", "finished_at"))
    first_created = min(d.created_at for d in done)
    return Figures(
        wall=(max(d.finished_at for d in done) - first_created).total_seconds(),
        start=(done[0].started_at - done[0].created_at).total_seconds(),
        first_step=(min(r[0] for r in runs) - first_created).total_seconds(),
        step=sum((f - s).total_seconds() for s, f in runs),
        target_steps=len(runs),
    )


def chain(length: int, name: str, timeout: float) -> float:
    """Seconds from sending the first of `length` chained no-op tasks to the end of the last one."""
    from django.utils import timezone

    from bench.floor.models import Hit
    from bench.floor.tasks import hop

    began = timezone.now()
    hop.apply_async((1, length, name))
    deadline = time.monotonic() + timeout
    while (hit := Hit.objects.filter(name=name).first()) is None:
        if time.monotonic() > deadline:
            raise RunFailed(f"the chain {name} did not end within {timeout:.0f} s")
        time.sleep(POLL)
    return (hit.created_at - began).total_seconds()


def bare_step(path: str, count: int = 40) -> float:
    """Median seconds of the step kind alone (shell `true` in a target directory), in this process."""
    from apps.deployments import steps

    kind = steps.get(STEP["kind"])
    timings = []
    for _ in range(count):
        ctx = steps.StepContext(
            params=dict(STEP["params"]),
            target={"name": "t001", "path": path},
            artifact=None,
            release={"application": APPLICATION, "version": "1.0.0"},
            environment={"slug": ENVIRONMENTS[0]},
            env={},
            log=lambda line: None,
        )
        began = time.perf_counter()
        result = kind.run(ctx)
        timings.append(time.perf_counter() - began)
        if result.status != "succeeded":
            raise RunFailed(f"the step alone failed: {result.message}")
    return statistics.median(timings)


def sql_counts(captured: list[dict]) -> tuple[int, int]:
    """SQL statements (transaction control and savepoints not counted) and transactions that write
    (explicit ones, and writes in autocommit: one each), in a CaptureQueriesContext's list."""
    statements = writes = 0
    in_transaction = wrote = False
    for query in captured:
        verb = query["sql"].lstrip().split(None, 1)[0].upper() if query["sql"].strip() else ""
        if verb == "BEGIN":
            in_transaction, wrote = True, False
        elif verb in ("COMMIT", "ROLLBACK") and "SAVEPOINT" not in query["sql"].upper():
            writes += wrote
            in_transaction = False
        elif verb not in ("SAVEPOINT", "RELEASE", "ROLLBACK"):
            statements += 1
            write = verb in ("INSERT", "UPDATE", "DELETE")
            if in_transaction:
                wrote = wrote or write
            else:
                writes += write
    return statements, writes


@dataclass
class Unit:
    statements: float  # SQL statements per unit
    writes: float  # transactions that write, per unit (each one a WAL flush at commit)
    ms: float  # wall time per unit
    step_ms: float  # of it in StepRuns


def in_process(environment, release, template, batch: int) -> Unit:
    """One deployment whose units this process runs itself (no worker, no broker hop; the messages the
    engine sends meanwhile wait in the bench's queue until the clean-up): medians per unit."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.deployments.engine import runner
    from apps.deployments.models import StepRun
    from apps.deployments.services import deployment_create

    deployment = deployment_create(
        actor=None,
        release=release,
        environment=environment,
        strategy="rolling",
        strategy_options={"batch_size": batch, "health_gate": False},
        template=template,
    )
    units = []
    for phase in range(len(deployment.plan["phases"])):
        with CaptureQueriesContext(connection) as captured:
            began = time.perf_counter()
            runner.advance(deployment.pk)
            elapsed = (time.perf_counter() - began) * 1000
        runs = StepRun.objects.filter(deployment=deployment, phase=phase).values_list("started_at", "finished_at")
        step_ms = sum((f - s).total_seconds() for s, f in runs) * 1000
        units.append(Unit(*sql_counts(captured.captured_queries), elapsed, step_ms))
    deployment.refresh_from_db()
    if deployment.status != "succeeded":
        raise RunFailed(f"the in-process deployment ended {deployment.status}: {deployment.status_reason}")
    return Unit(*(statistics.median(getattr(u, f) for u in units) for f in ("statements", "writes", "ms", "step_ms")))


# --- Report ---------------------------------------------------------------------------------------------


def median_figures(runs: list[Figures]) -> Figures:
    return Figures(
        wall=statistics.median(r.wall for r in runs),
        start=statistics.median(r.start for r in runs),
        first_step=statistics.median(r.first_step for r in runs),
        step=statistics.median(r.step for r in runs),
        target_steps=runs[0].target_steps,
    )


def report(rows: list[tuple[int, str, Figures, float | None]]) -> None:
    print(
        f"{'workers':>7} {'deployments':<11} {'wall s':>6} {'start ms':>8} {'1st step ms':>11} {'step s':>6}"
        f" {'overhead ms/ts':>14} {'ts/s':>5} {'floor ms/task':>13} {'ratio':>6}"
    )
    for workers, label, f, floor in rows:
        overhead = f"{f.overhead * 1000:>14.2f}" if floor is not None else f"{'-':>14}"
        floor_text = f"{floor * 1000:>13.2f}" if floor is not None else f"{'-':>13}"
        ratio = f"{f.overhead / floor:>5.1f}x" if floor else f"{'-':>6}"
        print(
            f"{workers:>7} {label:<11} {f.wall:>6.2f} {f.start * 1000:>8.1f} {f.first_step * 1000:>11.1f}"
            f" {f.step:>6.2f} {overhead} {f.rate:>5.0f} {floor_text} {ratio}"
        )


# --- Main -----------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=200, help="directory targets per environment (default 200)")
    parser.add_argument("--batch", type=int, default=20, help="targets per batch (default 20)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each configuration; medians shown (default 3)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds a run may take at most (default 300)")
    args = parser.parse_args()
    if args.targets < 1 or args.batch < 1 or args.repeat < 1:
        parser.error("need --targets, --batch and --repeat >= 1")
    signal.signal(signal.SIGTERM, _interrupted)

    server, origin = server_url()
    redis_url, redis_origin = broker_url()
    name = f"releasehub_bench_{os.getpid()}"
    prefix = f"releasehub-bench-{os.getpid()}:"
    var_dir = tempfile.mkdtemp(prefix="releasehub-bench-")
    workers: dict[str, subprocess.Popen] = {}
    logs: dict[str, Path] = {}
    redis = None
    created = False
    try:
        redis = redis_client(redis_url)
        create_database(server, name)
        created = True
        env = server_environment(with_database(server, name), var_dir)
        env.update({"CELERY_BROKER_URL": redis_url, "BENCH_REDIS_KEYPREFIX": prefix})
        began = time.perf_counter()
        run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], env, "manage.py migrate")
        sizes = [[slug, args.targets] for slug in ENVIRONMENTS] + [[WARM, 4]]
        targets_root = str(Path(var_dir) / "targets")
        run(
            [sys.executable, "-c", SETUP, APPLICATION, TEMPLATE, json.dumps(STEP), targets_root, json.dumps(sizes)],
            env,
            "setup",
        )
        print(
            f"database: {name} on {redact(server)} ({origin}), migrated and set up in"
            f" {time.perf_counter() - began:.1f} s (dropped at the end)"
        )

        os.environ.update(env)  # this process sends the tasks and reads the figures: the same settings
        import django

        django.setup()
        from apps.deployments.models import DeploymentTemplate
        from apps.environments.models import Environment
        from apps.releases.models import Release

        release = Release.objects.select_related("application").get(application__slug=APPLICATION)
        template = DeploymentTemplate.objects.get(slug=TEMPLATE)
        main_env, other_env = (Environment.objects.get(slug=slug) for slug in ENVIRONMENTS)
        warm_env = Environment.objects.get(slug=WARM)
        units = -(-args.targets // args.batch)
        print(
            f"broker: {redact(redis_url)} ({redis_origin}), keys prefixed {prefix} (deleted at the end);"
            f" workers: celery --pool solo --concurrency 1, bench.floor.settings; {os.cpu_count()} CPUs"
        )
        print(
            f"deployment: rolling, {args.targets} directory targets, batches of {args.batch} ({units} units of"
            f" work), 1 step per target: shell `true`; floor: a chain of {args.targets} no-op tasks;"
            f" medians of {args.repeat}"
        )

        busy_before = cpu_busy()
        rows = []
        for count in (1, 2):
            while len(workers) < count:
                worker = f"bench{len(workers) + 1}@{os.uname().nodename}"
                logs[worker] = Path(var_dir) / f"{worker.split('@')[0]}.log"
                workers[worker] = start_worker(env, worker, logs[worker])
            wait_answering(workers, logs)
            # Warm-up, unmeasured: every worker connects, imports and runs a unit or two.
            deploy([warm_env], release, template, 1, args.timeout)
            chain(4 * count, f"warm-{count}", args.timeout)
            engine, floor = [], []
            for i in range(args.repeat):
                engine.append(deploy([main_env], release, template, args.batch, args.timeout))
                floor.append(chain(args.targets, f"floor-{count}-{i}", args.timeout) / args.targets)
            rows.append((count, "1", median_figures(engine), statistics.median(floor)))
        both = [deploy([main_env, other_env], release, template, args.batch, args.timeout) for _ in range(args.repeat)]
        rows.append((2, "2 (2 envs)", median_figures(both), None))
        for worker in list(workers):
            stop(workers.pop(worker))
        busy_after = cpu_busy()  # the workers are gone: any load now is someone else's

        step_alone = bare_step(str(Path(targets_root) / ENVIRONMENTS[0] / "t001"))
        unit = in_process(main_env, release, template, args.batch)

        report(rows)
        single, floor_1 = rows[0][2], rows[0][3]
        alone = (single.wall - step_alone * single.target_steps) / single.target_steps
        print(
            f"step: shell `true` alone {step_alone * 1000:.2f} ms (timed here); a StepRun's interval"
            f" {single.step / single.target_steps * 1000:.2f} ms also covers engine queries. Counting the command"
            f" alone as step time, the overhead is {alone * 1000:.2f} ms/ts, {alone / floor_1:.1f}x the floor"
            " (1 worker)"
        )
        print(
            f"in-process units (no broker): per unit of {args.batch} target-steps {unit.statements:.0f} SQL statements"
            f" and {unit.writes:.0f} transactions that write ({unit.statements / args.batch:.1f} and"
            f" {unit.writes / args.batch:.1f} per ts), {unit.ms:.0f} ms, {unit.step_ms:.0f} ms of it in StepRuns"
        )
        print(
            "overhead = (wall - step) / target-steps (ts); ratio = overhead / floor. One deployment's units run one"
            " after the other: a 2nd worker cannot speed one deployment up, only run a second one at once."
        )
        busy = {"before": busy_before, "after": busy_after}
        if any(b is not None and b > BUSY for b in busy.values()):
            shown = ", ".join(f"{b:.0%} {when}" for when, b in busy.items() if b is not None)
            print(f"warning: other processes kept the CPUs busy ({shown} the run): these figures are high")
        return 0
    except BenchError as exc:
        print(f"engine: {exc}", file=sys.stderr)
        return 2
    except RunFailed as exc:
        print(f"engine: {exc}", file=sys.stderr)
        for worker, log in logs.items():
            if log.exists():
                print(f"--- {worker} log:\n{log.read_text()[-2000:]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("engine: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the clean-up
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for process in workers.values():
            stop(process)
        if "django.db" in sys.modules and sys.modules["django"].apps.apps.ready:
            sys.modules["django.db"].connections.close_all()
        if created:
            try:
                drop_database(server, name)
            except Exception as exc:  # say so: the figures printed above are still valid
                print(f"engine: could not drop database {name}: {exc}", file=sys.stderr)
        if redis is not None:
            try:
                flush_prefix(redis, prefix)
            except Exception as exc:
                print(f"engine: could not delete the Redis keys {prefix}*: {exc}", file=sys.stderr)
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
