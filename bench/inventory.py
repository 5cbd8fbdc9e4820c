"""Inventory reads at scale: 1,000,000 installation records over 200 environments (10 targets each) and 2,000
applications in PostgreSQL, then the median and p95 of 100 runs of each read the inventory pages and API make,
through the real selectors (apps.inventory.selectors) as a superuser, and the EXPLAIN ANALYZE plan of every
SQL statement they send, checked for indexes:

- where does artifact X run: `visible_installations(user, artifact_id=X)`, listed, X a random artifact that
  runs somewhere (another one each run);
- what runs in environment Y: `visible_installations(user, environment=Y)` by application and target, listed,
  Y a random environment that runs something;
- the dashboard matrix: `dashboard_matrix()` of the dashboard's applications and environments, all of them
  (2,000 x 200) and the first 500 x 20 (the issue's dashboard), the two lists read in the timed run.

    .venv/bin/python bench/inventory.py [--rows 1000000] [--runs 100]
    .venv/bin/python bench/inventory.py --rows 10000 --runs 10    # a quick check: half a minute
    DATABASE_URL=postgres://user:pw@dbhost:5432/anything .venv/bin/python bench/inventory.py

(`make bench` runs it with the defaults: about 4 minutes on 2 cores, half a minute of it seeding and most of
the rest the 100 runs of the whole matrix.) Needs PostgreSQL, as
bench/register_artifacts.py: a throw-away database (releasehub_bench_<pid>) on the server of DATABASE_URL
(default postgres://postgres@127.0.0.1:5432/), migrated, seeded and dropped at the end, even on failure or
Ctrl-C; exits with 2 and says so when it cannot reach the server.

Seeding is set-based SQL (INSERT ... SELECT over generate_series), into tables whose secondary indexes and
foreign keys are dropped for the load and re-created after it (the definitions PostgreSQL reports, so the
schema is the migrated one), then VACUUM ANALYZE. Columns the seed does not set get their model default.
The shape: environment e (tiers development, test, staging, production in turn) runs 50 applications
(e*10 ... e*10+49, modulo 2,000; each application in 5 environments) on all of its 10 targets; each such cell
got 10 deployments over the past year, each one of a release of one artifact (versions 1.0.0 ... 1.0.9) to all
10 targets, so each target and application has a timeline of 10 records, the last one current: 100,000
deployments, 100,000 current records. Some cells lag (their first deployments redeployed 1.0.0), so 1.0.6 to
1.0.9 run now. Every current record has an observation, 1 in 97 drifted. --rows scales the cells (a multiple
of 100: 10 targets x 10 records).

Exits with 1 when the plan of a read scans inventory_installation or deployments_deployment sequentially (when
the table holds 50,000 rows or more: below that a Seq Scan is the right plan, and only noted).
Reads share the machine with the database: run it on an otherwise idle machine (it warns when other processes
were busy).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

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
    with_database,
)

ENVIRONMENTS = 200
TARGETS = 10  # per environment
APPLICATIONS = 2000
VERSIONS = 10  # artifacts (and releases) per application: 1.0.0 ... 1.0.9
RECORDS = 10  # installation records per target and application: one deployment each, the last one current
STRIDE = APPLICATIONS // ENVIRONMENTS  # environment e runs applications e*STRIDE, e*STRIDE+1, ...
TIERS = ("development", "test", "staging", "production")
LAG = 4  # a cell's first (e + a) % LAG deployments redeployed 1.0.0: what runs now is 1.0.6 ... 1.0.9
DRIFT = 97  # one current record in DRIFT has a drifted observation
ROUND = timedelta(days=36)  # between a cell's deployments: RECORDS rounds span the past year
SLICE = (500, 20)  # the dashboard: applications x environments
WARMUP = 3  # unmeasured runs of each read
# No read may scan these sequentially (the seed's count of their rows by table); below CHECKED_FROM rows, as
# after a small --rows, a Seq Scan is the planner's right choice and is only noted.
BIG_TABLES = {"inventory_installation": "installations", "deployments_deployment": "deployments"}
CHECKED_FROM = 50_000


@dataclass(frozen=True)
class Shape:
    """How many of each: cells are (environment, application) pairs that run something."""

    rows: int

    @property
    def pairs(self) -> int:  # (target, application) pairs: the current records
        return self.rows // RECORDS

    @property
    def cells(self) -> int:
        return self.pairs // TARGETS

    @property
    def per_environment(self) -> int:
        return -(-self.cells // ENVIRONMENTS)


# --- Seeding ---------------------------------------------------------------------------------------------


def insert_select(model, columns: dict[str, str], source: str, params: tuple = ()) -> int:
    """INSERT INTO model's table SELECT the `columns` expressions FROM `source`; the model's other columns
    get their default (as a parameter), so a column someone adds later needs no change here. Returns the
    number of rows. Raises BenchError for a NOT NULL column without a default."""
    from django.db import connection
    from django.utils import timezone

    now = timezone.now()
    defaults = {}
    for f in model._meta.concrete_fields:
        if f.column in columns or f.primary_key:
            continue
        value = now if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False) else f.get_default()
        if value is None and not f.null:
            raise BenchError(f"{model._meta.db_table}.{f.column} has no default: bench/inventory.py must set it")
        defaults[f.column] = f.get_db_prep_save(value, connection)
    names = ", ".join(connection.ops.quote_name(c) for c in [*defaults, *columns])
    values = ", ".join(["%s"] * len(defaults) + list(columns.values()))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {model._meta.db_table} ({names}) SELECT {values} FROM {source}",  # noqa: S608
            (*defaults.values(), *params),
        )
        return cursor.rowcount


@contextmanager
def bulk_load(*tables: str) -> Iterator[None]:
    """Drop the tables' secondary indexes and their unique, exclusion and foreign-key constraints for the
    load, and re-create them from the definitions PostgreSQL gave (one sorted build each instead of a
    million index insertions and deferred per-row checks)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), contype
            FROM pg_constraint WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('u', 'x', 'f')
            ORDER BY contype DESC
            """,
            [list(tables)],
        )
        constraints = cursor.fetchall()  # unique first: a foreign key may need another table's unique key
        cursor.execute(
            """
            SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
            FROM pg_index i WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
            """,
            [list(tables)],
        )
        indexes = cursor.fetchall()
        for table, name, _, _ in reversed(constraints):
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {name}")
    yield
    with connection.cursor() as cursor:
        for _, definition in indexes:
            cursor.execute(definition)
        for table, name, definition, _ in constraints:
            cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')


def next_id(model) -> int:
    """Seeded rows get ids from here on (the tables are empty after migrating, but need not be)."""
    from django.db.models import Max

    return (model.objects.aggregate(top=Max("pk"))["top"] or 0) + 1


def sample_plan() -> dict:
    """A plan the size and shape build_plan makes for a rolling deployment of 2 steps to 10 targets."""
    names = [f"t{i:02d}" for i in range(1, TARGETS + 1)]
    steps = [
        {"name": "Fetch", "kind": "shell", "scope": "target", "idempotent": False, "undo": True},
        {"name": "Restart", "kind": "shell", "scope": "target", "idempotent": False, "undo": False},
    ]
    targets = {
        name: {
            "id": i,
            "name": name,
            "address": f"10.0.0.{i}",
            "path": f"/srv/app/{name}",
            "slot": "none",
            "health_check_url": f"https://{name}.example.internal/healthz",
            "labels": {"rack": f"r{i % 3}"},
            "attributes": {},
            "variables": {"REGION": "eu-west-1", "LOG_LEVEL": "info"},
            "params": [
                {"command": f"curl -fsSL https://artifacts.example.com/app/1.0.0.tar.gz | tar -xz -C /srv/app/{name}"},
                {"command": "systemctl restart app"},
            ],
        }
        for i, name in enumerate(names, 1)
    }
    return {
        "format": 1,
        "release": {"id": 1, "application": "app-0001", "version": "1.0.0"},
        "environment": {"slug": "env-001", "name": "Environment 001", "tier": "development"},
        "template": {"slug": "bench-rolling", "version": 1},
        "strategy": {"name": "rolling", "batch_size": 2, "health_gate": False},
        "steps": steps,
        "phases": [{"name": f"Batch {b + 1}", "targets": names[2 * b : 2 * b + 2], "steps": [0, 1]} for b in range(5)],
        "targets": targets,
    }


@dataclass
class Seeded:
    seconds: float = 0.0
    steps: list[tuple[str, float]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def seed(shape: Shape, team, user, template_version) -> Seeded:
    """Fill the database: everything the inventory reads refer to, set-based. See the module docstring."""
    from django.db import connection

    from apps.catalog.models import Application, Artifact
    from apps.catalog.versions import version_sort_key
    from apps.deployments.models import Deployment
    from apps.environments.models import Environment, Target
    from apps.inventory.models import Installation, Observation
    from apps.releases.models import Release, ReleaseArtifact

    done = Seeded()
    began = time.perf_counter()
    now = datetime.now().astimezone()
    origin = now - ROUND * RECORDS - timedelta(days=1)
    versions = [f"1.0.{v}" for v in range(VERSIONS)]
    keys = [version_sort_key(v, now) for v in versions]  # no registration time in a semantic version's key
    plan = json.dumps(sample_plan(), sort_keys=True, separators=(",", ":"))
    E, T, A, V, R = ENVIRONMENTS, TARGETS, APPLICATIONS, VERSIONS, RECORDS
    cells, pairs = shape.cells, shape.pairs
    env0, target0, app0 = next_id(Environment), next_id(Target), next_id(Application)
    artifact0, release0, link0 = next_id(Artifact), next_id(Release), next_id(ReleaseArtifact)
    deployment0, installation0, observation0 = next_id(Deployment), next_id(Installation), next_id(Observation)
    # Cell c is environment c % E and application (e * STRIDE + c / E) % A; a lagging cell's first deployments
    # redeployed 1.0.0, so its k-th deployment (round k) installed version v.
    cell = f"""
        CROSS JOIN LATERAL (SELECT mod(c, {E}) AS e) ce
        CROSS JOIN LATERAL (SELECT mod(ce.e * {STRIDE} + c / {E}, {A}) AS a) ca
        CROSS JOIN LATERAL (SELECT least({V - 1}, greatest(0, k - mod(ce.e + ca.a, {LAG}))) AS v) cv
    """
    # When round k of cell c deployed: the cells' deployments spread evenly over each round.
    start = f"'{origin.isoformat()}'::timestamptz"
    at = f"({start} + k * interval '{ROUND.days} days' + c * (interval '{ROUND.days} days' / {max(cells, 1)}))"

    def step(label: str, count: int, began_at: float) -> None:
        done.steps.append((label, time.perf_counter() - began_at))
        done.counts[label] = count

    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SET maintenance_work_mem = '256MB'")
    tables = [m._meta.db_table for m in (Artifact, Release, ReleaseArtifact, Deployment, Installation, Observation)]
    t = time.perf_counter()
    with bulk_load(*tables):
        step("drop indexes", 0, t)
        t = time.perf_counter()
        n = insert_select(
            Environment,
            {
                "id": f"{env0} + e",
                "slug": "'env-' || lpad((e + 1)::text, 3, '0')",
                "name": "'Environment ' || lpad((e + 1)::text, 3, '0')",
                "tier": f"(ARRAY{list(TIERS)}::text[])[mod(e, {len(TIERS)}) + 1]",
                "owner_team_id": str(team.pk),
            },
            f"generate_series(0, {E - 1}) AS e",
        )
        step("environments", n, t)
        t = time.perf_counter()
        n = insert_select(
            Target,
            {
                "id": f"{target0} + e * {T} + i",
                "environment_id": f"{env0} + e",
                "name": "'t' || lpad((i + 1)::text, 2, '0')",
                "address": "'host-' || e || '-' || i || '.example.internal'",
            },
            f"generate_series(0, {E - 1}) AS e CROSS JOIN generate_series(0, {T - 1}) AS i",
        )
        step("targets", n, t)
        t = time.perf_counter()
        n = insert_select(
            Application,
            {
                "id": f"{app0} + a",
                "slug": "'app-' || lpad((a + 1)::text, 4, '0')",
                "name": "'Application ' || lpad((a + 1)::text, 4, '0')",
                "owner_team_id": str(team.pk),
            },
            f"generate_series(0, {A - 1}) AS a",
        )
        step("applications", n, t)
        t = time.perf_counter()
        n = insert_select(
            Artifact,
            {
                "id": f"{artifact0} + a * {V} + n - 1",
                "application_id": f"{app0} + a",
                "version": "version",
                "version_key": "version_key",
                "digest": "'sha256:' || encode(sha256(convert_to(a || '/' || version, 'UTF8')), 'hex')",
                "uri": "'https://artifacts.example.com/app-' || lpad((a + 1)::text, 4, '0') || '/' || version"
                " || '.tar.gz'",
                "commit": "left(encode(sha256(convert_to('commit ' || a || '/' || version, 'UTF8')), 'hex'), 40)",
                "branch": "'main'",
                "registered_at": f"{start} - interval '1 hour' + (n - 1) * interval '{ROUND.days} days'",
                "registered_by_id": str(user.pk),
            },
            f"generate_series(0, {A - 1}) AS a CROSS JOIN unnest(%s::text[], %s::text[]) WITH ORDINALITY"
            " AS versions(version, version_key, n)",
            (versions, keys),
        )
        step("artifacts", n, t)
        t = time.perf_counter()
        n = insert_select(
            Release,
            {
                "id": f"{release0} + a * {V} + n - 1",
                "application_id": f"{app0} + a",
                "version": "version",
                "created_by_id": str(user.pk),
                "created_at": f"{start} - interval '30 minutes' + (n - 1) * interval '{ROUND.days} days'",
                "updated_at": f"{start} - interval '30 minutes' + (n - 1) * interval '{ROUND.days} days'",
            },
            f"generate_series(0, {A - 1}) AS a CROSS JOIN unnest(%s::text[]) WITH ORDINALITY AS versions(version, n)",
            (versions,),
        )
        step("releases", n, t)
        t = time.perf_counter()
        n = insert_select(
            ReleaseArtifact,
            {"id": f"{link0} + r", "release_id": f"{release0} + r", "artifact_id": f"{artifact0} + r", "position": "0"},
            f"generate_series(0, {A * V - 1}) AS r",
        )
        step("release artifacts", n, t)
        t = time.perf_counter()
        n = insert_select(
            Deployment,
            {
                "id": f"{deployment0} + k * {cells} + c",
                "release_id": f"{release0} + ca.a * {V} + cv.v",
                "environment_id": f"{env0} + ce.e",
                "application_id": f"{app0} + ca.a",
                "template_version_id": str(template_version.pk),
                "strategy": "'rolling'",
                "strategy_options": """'{"batch_size": 2, "health_gate": false}'::jsonb""",
                "status": "'succeeded'",
                "plan": "%s::jsonb",
                "plan_digest": "%s",
                "created_by_id": str(user.pk),
                "created_at": at,
                "updated_at": f"{at} + interval '6 minutes'",
                "queued_at": at,
                "started_at": f"{at} + interval '1 minute'",
                "finished_at": f"{at} + interval '6 minutes'",
            },
            f"generate_series(0, {R - 1}) AS k CROSS JOIN LATERAL generate_series(0, {cells - 1}) AS c {cell}",
            (plan, hashlib.sha256(plan.encode()).hexdigest()),
        )
        step("deployments", n, t)
        t = time.perf_counter()
        # Record k of pair p (target i of cell c) installed round k's deployment; round k + 1 closed it.
        since = f"{at} + interval '1 minute' + i * interval '20 seconds'"
        n = insert_select(
            Installation,
            {
                "id": f"{installation0} + k * {pairs} + p",
                "environment_id": f"{env0} + ce.e",
                "target_id": f"{target0} + ce.e * {T} + i",
                "application_id": f"{app0} + ca.a",
                "artifact_id": f"{artifact0} + ca.a * {V} + cv.v",
                "deployment_id": f"{deployment0} + k * {cells} + c",
                "replaced_id": f"CASE WHEN k > 0 THEN {installation0} + (k - 1) * {pairs} + p END",
                "since": since,
                "until": f"CASE WHEN k < {R - 1} THEN {since} + interval '{ROUND.days} days' END",
                "current": f"k = {R - 1}",
            },
            f"generate_series(0, {R - 1}) AS k CROSS JOIN LATERAL generate_series(0, {pairs - 1}) AS p"
            f" CROSS JOIN LATERAL (SELECT p / {T} AS c, mod(p, {T}) AS i) pc {cell}",
        )
        step("installations", n, t)
        t = time.perf_counter()
        n = insert_select(
            Observation,
            {
                "id": f"{observation0} + p",
                "environment_id": f"{env0} + ce.e",
                "target_id": f"{target0} + ce.e * {T} + i",
                "application_id": f"{app0} + ca.a",
                "version": f"CASE WHEN mod(p, {DRIFT}) = 0 THEN '1.0.0-hotfix' ELSE '1.0.' || cv.v END",
                "source": "'report'",
                "observed_at": "now() - mod(p, 600) * interval '1 second'",
                "expected_id": f"{artifact0} + ca.a * {V} + cv.v",
                "drifted": f"mod(p, {DRIFT}) = 0",
                "drifted_since": f"CASE WHEN mod(p, {DRIFT}) = 0 THEN now() - interval '2 hours' END",
            },
            f"(SELECT {R - 1} AS k) AS last CROSS JOIN generate_series(0, {pairs - 1}) AS p"
            f" CROSS JOIN LATERAL (SELECT p / {T} AS c, mod(p, {T}) AS i) pc {cell}",
        )
        step("observations", n, t)
        t = time.perf_counter()
    step("re-create indexes and constraints", 0, t)
    t = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("RESET maintenance_work_mem")
        cursor.execute("RESET synchronous_commit")
        cursor.execute("VACUUM ANALYZE")  # as autovacuum would have: statistics and the visibility map
    step("vacuum analyze", 0, t)
    done.seconds = time.perf_counter() - began
    return done


# --- Timing and plans --------------------------------------------------------------------------------------


@dataclass
class Read:
    name: str
    run: Callable[[random.Random], int]  # one read; returns the rows (or cells) it gave
    unit: str = "rows"
    timings_ms: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)

    def median(self) -> float:
        return statistics.median(self.timings_ms)

    def p95(self) -> float:
        if len(self.timings_ms) < 2:
            return self.timings_ms[0]
        return statistics.quantiles(self.timings_ms, n=20, method="inclusive")[18]


def reads(user) -> list[Read]:
    from apps.environments.models import Environment
    from apps.inventory.models import Installation
    from apps.inventory.selectors import (
        dashboard_applications,
        dashboard_environments,
        dashboard_matrix,
        visible_installations,
    )

    running = sorted(set(Installation.objects.filter(current=True).values_list("artifact_id", flat=True)))
    used = Installation.objects.filter(current=True).values("environment_id")
    environments = list(Environment.objects.filter(pk__in=used).order_by("pk"))
    if not running or not environments:
        raise BenchError("the seed left no current installation")
    apps_slice, envs_slice = SLICE

    def where(rng: random.Random) -> int:
        return len(list(visible_installations(user, artifact_id=rng.choice(running))))

    def what(rng: random.Random) -> int:
        environment = rng.choice(environments)
        rows = visible_installations(user, environment=environment).order_by("application__slug", "target__name")
        return len(list(rows))

    def matrix(rng: random.Random) -> int:
        return len(dashboard_matrix(list(dashboard_applications(user)), list(dashboard_environments(user))))

    def matrix_slice(rng: random.Random) -> int:
        return len(
            dashboard_matrix(
                list(dashboard_applications(user)[:apps_slice]), list(dashboard_environments(user)[:envs_slice])
            )
        )

    return [
        Read("where does artifact X run", where),
        Read("what runs in environment Y", what),
        Read(f"dashboard matrix {APPLICATIONS} x {ENVIRONMENTS}", matrix, "cells"),
        Read(f"dashboard matrix {apps_slice} x {envs_slice}", matrix_slice, "cells"),
    ]


def time_reads(items: list[Read], runs: int) -> None:
    for read in items:
        rng = random.Random(read.name)  # the same artifacts and environments every time the bench runs
        for _ in range(WARMUP):
            read.run(rng)
        for _ in range(runs):
            began = time.perf_counter()
            read.sizes.append(read.run(rng))
            read.timings_ms.append((time.perf_counter() - began) * 1000)


@contextmanager
def captured() -> Iterator[list[tuple[str, tuple]]]:
    """The SQL statements (and parameters) this process sends meanwhile."""
    from django.db import connection

    statements: list[tuple[str, tuple]] = []

    def record(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        yield statements


INDEX_USE = re.compile(r"(?:Index(?: Only)? Scan(?: Backward)? using|Bitmap Index Scan on) (\S+)")
SEQ_SCAN = re.compile(r"(?:Parallel )?Seq Scan on (\S+)")


@dataclass
class Plan:
    read: str
    sql: str
    lines: list[str]

    @property
    def indexes(self) -> list[str]:
        return sorted({m for line in self.lines for m in INDEX_USE.findall(line)})

    @property
    def seq_scans(self) -> list[str]:
        return sorted({m for line in self.lines for m in SEQ_SCAN.findall(line)})

    @property
    def big(self) -> bool:
        return any(f'"{table}"' in self.sql for table in BIG_TABLES)

    def bad(self, checked: set[str]) -> list[str]:
        return [table for table in self.seq_scans if table in checked]


def explain(items: list[Read]) -> list[Plan]:
    """EXPLAIN ANALYZE of every statement one run of each read sends."""
    from django.db import connection

    plans = []
    for read in items:
        with captured() as statements:
            read.run(random.Random(read.name))
        for sql, params in statements:
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS OFF) {sql}", params)
                plans.append(Plan(read.name, sql, [row[0] for row in cursor.fetchall()]))
    return plans


def tables_of(sql: str) -> str:
    return ", ".join(dict.fromkeys(re.findall(r'(?:FROM|JOIN) "(\w+)"', sql))) or "?"


def clip(line: str, width: int = 150) -> str:
    return line if len(line) <= width else line[: width - 3] + "..."


# --- Main ----------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="installation records (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=100, help="timed runs of each read (default 100)")
    args = parser.parse_args()
    unit = TARGETS * RECORDS
    most = ENVIRONMENTS * APPLICATIONS * unit
    if args.rows < unit or args.rows % unit or args.rows > most or args.runs < 1:
        parser.error(f"--rows: a multiple of {unit} from {unit} to {most:,}; --runs >= 1")
    signal.signal(signal.SIGTERM, _interrupted)

    shape = Shape(args.rows)
    server, origin = server_url()
    name = f"releasehub_bench_{os.getpid()}"
    var_dir = tempfile.mkdtemp(prefix="releasehub-bench-")
    created = False
    try:
        create_database(server, name)
        created = True
        env = server_environment(with_database(server, name), var_dir)
        began = time.perf_counter()
        run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], env, "manage.py migrate")
        print(
            f"database: {name} on {redact(server)} ({origin}), migrated in {time.perf_counter() - began:.1f} s"
            f" (dropped at the end); {os.cpu_count()} CPUs"
        )
        os.environ.update(env)  # this process seeds and reads: the same settings as the migration
        import django

        django.setup()
        from apps.accounts.models import User
        from apps.accounts.services import team_create
        from apps.deployments.models import TemplateVersion
        from apps.deployments.services import template_create

        team = team_create(actor=None, name="Bench team", slug="bench")
        user = User.objects.create_superuser(username="bench-admin", email="", password=None)
        template = template_create(
            actor=None,
            slug="bench-rolling",
            name="Bench rolling",
            steps=[{"name": "Restart", "kind": "shell", "params": {"command": "systemctl restart app"}}],
        )
        seeded = seed(shape, team, user, TemplateVersion.objects.get(template=template, number=1))
        counts = seeded.counts
        print(
            f"seeded in {seeded.seconds:.1f} s: {counts['installations']:,} installations ({shape.pairs:,} current)"
            f" on {counts['targets']:,} targets in {counts['environments']} environments running up to"
            f" {shape.per_environment} of {counts['applications']:,} applications each; {counts['deployments']:,}"
            " deployments,"
            f" {counts['releases']:,} releases, {counts['artifacts']:,} artifacts,"
            f" {counts['observations']:,} observations ({-(-shape.pairs // DRIFT):,} drifted)"
        )
        print("  " + ", ".join(f"{label} {seconds:.1f} s" for label, seconds in seeded.steps))

        busy_before = cpu_busy()
        items = reads(user)
        time_reads(items, args.runs)
        busy_after = cpu_busy()
        heading = f"read (superuser, {args.runs} runs each)"
        print(f"\n{heading:<40} {'rows':>9} {'median ms':>10} {'p95 ms':>8}")
        for read in items:
            size = statistics.median(read.sizes)
            print(f"{read.name:<40} {size:>9,.0f} {read.median():>10.1f} {read.p95():>8.1f}  {read.unit}")

        plans = explain(items)
        print(
            "\nplans: EXPLAIN ANALYZE of each statement of one run of each read, in full for those that read"
            f" {' or '.join(BIG_TABLES)} (long lines cut)"
        )
        for plan in plans:
            used = ", ".join(plan.indexes) or "none"
            seq = f"; Seq Scan on {', '.join(plan.seq_scans)}" if plan.seq_scans else ""
            print(f"\n-- {plan.read}: {tables_of(plan.sql)}\n   indexes: {used}{seq}")
            if plan.big:
                for line in plan.lines:
                    print("   " + clip(line))

        checked = {table for table, label in BIG_TABLES.items() if counts[label] >= CHECKED_FROM}
        small = [f"{table} ({counts[BIG_TABLES[table]]:,} rows)" for table in BIG_TABLES if table not in checked]
        bad = [plan for plan in plans if plan.bad(checked)]
        print()
        for plan in bad:
            print(f"FAIL {plan.read}: Seq Scan on {', '.join(plan.bad(checked))}")
        if not bad and checked:
            print(f"ok: no read scans {' or '.join(sorted(checked))} sequentially")
        if small:
            print(f"not checked, fewer than {CHECKED_FROM:,} rows: {', '.join(small)}")
        busy = {"before": busy_before, "after": busy_after}
        if any(b is not None and b > BUSY for b in busy.values()):
            shown = ", ".join(f"{b:.0%} {when}" for when, b in busy.items() if b is not None)
            print(f"warning: other processes kept the CPUs busy ({shown} the reads): these figures are high")
        return 1 if bad else 0
    except BenchError as exc:
        print(f"inventory: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("inventory: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the clean-up
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if "django.db" in sys.modules and sys.modules["django"].apps.apps.ready:
            sys.modules["django.db"].connections.close_all()
        if created:
            try:
                drop_database(server, name)
            except Exception as exc:  # say so: the figures printed above are still valid
                print(f"inventory: could not drop database {name}: {exc}", file=sys.stderr)
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
