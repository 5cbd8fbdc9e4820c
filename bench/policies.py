"""Policy evaluation: the median and p95 of apps.policies.services.evaluate() and check_start(), called through
the real services (200 calls each, 30 of the slow ones), and the SQL statements one call sends
(django.test.utils.CaptureQueriesContext):

1. evaluate() for an environment no policy set applies to: the fast path every start pays;
2. evaluate() with one set holding one rule of each of the 11 kinds, all passing;
3. evaluate() with 20 sets x 10 rules (7 sets attached by environment, 7 by tier, 6 to all environments; five
   rule kinds and five CEL expressions each, every kind in 10 of the sets), all passing (--slow-runs);
4. check_start() of a queued deployment to the environment of case 2 (the overrides read included);
5. a CEL `expression` rule: its first evaluation in a fresh process (apps.policies.rules._cel's and
   _program's caches cleared, and cel-python's grammar, CELParser.CEL_PARSER, reset as its docstring says;
   --slow-runs) and a later one; then compiling (celpy's Environment.compile) and evaluating the compiled
   program alone, and starting and joining a thread (the rule runs each expression in one, against its time limit).

Case 0 is the floor: one ORM read of a row by primary key (Environment.objects.get), on the same connection.
Then the SQL statements of the first rule of each kind in one evaluation, and of each further one (the kind's
check called twice with the same context): where case 3's statements come from.

    .venv/bin/python bench/policies.py [--runs 200] [--slow-runs 30]
    .venv/bin/python bench/policies.py --runs 20 --slow-runs 5    # a quick check: 45 s, half of it the migration
    DATABASE_URL=postgres://user:pw@dbhost:5432/anything .venv/bin/python bench/policies.py

(`make bench` runs it with the defaults: about 1.5 minutes on 2 idle cores, a third of it case 3, a quarter the
migration.) Needs PostgreSQL, as bench/register_artifacts.py: a throw-away database (releasehub_bench_<pid>)
on the server of DATABASE_URL (default postgres://postgres@127.0.0.1:5432/), migrated, seeded and dropped at
the end, even on failure or Ctrl-C; exits with 2 and says so when it cannot reach the server.

Seeding goes through the services (actor=None), but for two deployment rows: the one that succeeded in the
previous stage two days ago (made as tests/policies/test_rules.py makes it: a real one needs the engine), and
case 4's, made by deployment_create (which checks the policies of case 2; pending approval, the environment
having an approval gate) and then set queued. Each timed call gets its objects read anew, outside the timed
part, as deployment_create and the dispatcher read them (so no related object stays cached from one call to
the next; case 5 reuses one rule context); the statements are counted in one more, untimed, call. Cases 1, 2
and 4 are measured before case 3's sets exist (6 of them apply to every environment).

Exits with 1 when case 3 sends more than case 2's statements + 5: evaluation must not query per policy set or
per rule. Timings share the machine with the database: run it on an otherwise idle machine (it warns when
other processes were busy).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
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

TEAM = "bench"
APPLICATION = "bench-app"
# slug: tier. The lifecycle: bench-test, then bench-one and bench-many; bench-bare is in no lifecycle.
ENVIRONMENTS = {"bench-bare": "development", "bench-test": "test", "bench-one": "staging", "bench-many": "production"}
STRATEGY = "all_at_once"
TICKET = "CHG-4711"
SETS, RULES_PER_SET = 20, 10  # case 3
EXTRA_QUERIES = 5  # case 3 may send at most this many statements more than case 2
WARMUP = 3  # unmeasured calls of each case
RULE_ORDER = (
    "require_approvals",
    "require_booking",
    "no_freeze",
    "require_previous_stage",
    "max_concurrent",
    "expression",
    "allowed_strategies",
    "allowed_branches",
    "artifact_requirements",
    "deployment_window",
    "change_ticket",
)

# Passing expressions, reading every variable the docs list.
EXPRESSIONS = (
    f'deployment.strategy in ["{STRATEGY}", "rolling"]',
    'artifacts.all(a, a.labels["tests"] == "passed" && a.digest.startsWith("sha256:"))',
    f'environment.tier in ["staging", "production"] && release.application == "{APPLICATION}"',
    f'"{TEAM}" in requester.teams && requester.username != ""',
    'deployment.change_ticket.matches("^CHG-[0-9]+$") && time.hour >= 0 && time.weekday != ""',
)


def rule(kind: str, environment, expression: str = EXPRESSIONS[0]) -> dict:
    """A rule of `kind` that passes for the seeded release in `environment` (one of bench-one, bench-many)."""
    params = {
        "require_approvals": {"min": 1, "teams": [TEAM]},
        "require_booking": {},
        "no_freeze": {},
        "require_previous_stage": {"soak": "1h"},
        "allowed_strategies": {"strategies": [STRATEGY, "rolling"]},
        "allowed_branches": {"patterns": ["main", "release/*"]},
        "artifact_requirements": {"digest": True, "build_url": True, "labels": {"tests": "passed"}},
        "deployment_window": {
            "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            "start": "00:00",
            "end": "24:00",
        },
        "max_concurrent": {"environments": [environment.slug], "max": 1},
        "change_ticket": {"pattern": r"^CHG-[0-9]+$"},
        "expression": {"expression": expression},
    }
    return {"kind": kind, "params": params[kind]}


# --- Seeding ---------------------------------------------------------------------------------------------


@dataclass
class Scene:
    user: object
    environments: dict
    release: object
    deployment: object = None  # case 4's, queued


def seed() -> Scene:
    from django.utils import timezone

    from apps.accounts.services import team_add_member, team_create, user_ensure
    from apps.approvals.services import policy_set as approval_gate
    from apps.catalog.services import application_create, artifact_register
    from apps.deployments.models import Deployment, TemplateVersion
    from apps.deployments.services import template_create
    from apps.environments.services import environment_create, lifecycle_create, target_create
    from apps.releases.services import release_create
    from apps.scheduling.services import booking_request

    team = team_create(actor=None, name="Bench team", slug=TEAM)
    user, _ = user_ensure(username="bench-ci", password=secrets.token_urlsafe(16))
    team_add_member(actor=None, team=team, user=user)
    environments = {
        slug: environment_create(actor=None, slug=slug, name=slug, owner_team=team, tier=tier)
        for slug, tier in ENVIRONMENTS.items()
    }
    test, one, many = environments["bench-test"], environments["bench-one"], environments["bench-many"]
    flow = lifecycle_create(
        actor=None,
        slug="bench-flow",
        name="Bench flow",
        stages=[
            {"name": "test", "automatic": False, "environments": [test]},
            {"name": "release", "automatic": False, "environments": [one, many]},
        ],
    )
    app = application_create(actor=None, slug=APPLICATION, name="Bench application", owner_team=team)
    artifact, _ = artifact_register(
        actor=user,
        application=APPLICATION,
        version="1.4.2",
        digest="sha256:" + "ab" * 32,
        uri=f"https://artifacts.example.com/{APPLICATION}/1.4.2.tar.gz",
        branch="release/1.4",
        build_url="https://ci.example.com/builds/1",
        labels={"tests": "passed"},
    )
    release = release_create(actor=None, application=app, artifacts=[artifact], lifecycle=flow)
    template = template_create(
        actor=None,
        slug="bench-noop",
        name="No-op",
        steps=[{"name": "noop", "kind": "shell", "params": {"command": "true"}}],
    )
    now = timezone.now()
    Deployment.objects.create(  # it ran in the first stage two days ago
        release=release,
        environment=test,
        application=app,
        template_version=TemplateVersion.objects.get(template=template, number=1),
        strategy=STRATEGY,
        status="succeeded",
        plan={},
        plan_digest="0" * 64,
        finished_at=now - timedelta(days=2),
    )
    for environment in (one, many):
        target_create(actor=None, environment=environment, name="t001", address="127.0.0.1")
        approval_gate(actor=None, environment=environment, required_approvals=1, eligible_teams=[team])
        booking_request(
            actor=None,
            environment=environment,
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(hours=6),
            title="Bench",
        )
    return Scene(user=user, environments=environments, release=release)


def queued_deployment(scene: Scene):
    """A deployment of the release to bench-one, made by deployment_create (its policies checked), then queued."""
    from django.utils import timezone

    from apps.deployments.models import Deployment, DeploymentTemplate
    from apps.deployments.services import deployment_create

    deployment = deployment_create(
        actor=None,
        requested_by=scene.user,
        release=scene.release,
        environment=scene.environments["bench-one"],
        strategy=STRATEGY,
        template=DeploymentTemplate.objects.get(slug="bench-noop"),
        change_ticket=TICKET,
    )
    if deployment.status != "pending_approval":
        raise BenchError(f"deployment_create made a {deployment.status} deployment, not one pending approval")
    Deployment.objects.filter(pk=deployment.pk).update(status="queued", queued_at=timezone.now())
    return deployment


def case_three_sets(many) -> None:
    """20 sets of 10 rules that apply to bench-many: by environment, by tier and to all, in turn."""
    from apps.policies.services import policy_set_create

    others = [kind for kind in RULE_ORDER if kind != "expression"]
    for i in range(SETS):
        rules = [rule(others[(i * 5 + j) % len(others)], many) for j in range(5)]
        rules += [rule("expression", many, f'{text} && environment.slug != "nowhere-{i}"') for text in EXPRESSIONS]
        attached = [{"environments": [many]}, {"tiers": ["production"]}, {"all_environments": True}][i % 3]
        policy_set_create(actor=None, slug=f"bench-set-{i:02d}", name=f"Bench set {i:02d}", rules=rules, **attached)


# --- Timing ------------------------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    timings_ms: list[float] = field(default_factory=list)
    queries: int | None = None

    def median(self) -> float:
        return statistics.median(self.timings_ms)

    def p95(self) -> float:
        if len(self.timings_ms) < 2:
            return self.timings_ms[0]
        return statistics.quantiles(self.timings_ms, n=20, method="inclusive")[18]


def measure(name: str, prepare: Callable[[], Callable[[], object]], runs: int, check=None) -> Case:
    """Time `runs` calls (after WARMUP) of what `prepare` returns, `prepare` (untimed) reading the objects anew
    each time; then count the statements of one more call, whose result `check` judges ("" when right)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    case = Case(name)
    for _ in range(WARMUP):
        prepare()()
    for _ in range(runs):
        call = prepare()
        began = time.perf_counter()
        call()
        case.timings_ms.append((time.perf_counter() - began) * 1000)
    call = prepare()
    with CaptureQueriesContext(connection) as captured:
        value = call()
    case.queries = len(captured.captured_queries)
    problem = check(value) if check else ""
    if problem:
        raise BenchError(f"{name}: {problem}")
    return case


def evaluation(scene: Scene, slug: str) -> Callable[[], Callable[[], object]]:
    """evaluate() as deployment_create calls it: the release (with its application) and environment read anew."""
    from apps.accounts.models import User
    from apps.environments.models import Environment
    from apps.policies.services import evaluate
    from apps.releases.models import Release

    def prepare():
        kwargs = {
            "release": Release.objects.select_related("application").get(pk=scene.release.pk),
            "environment": Environment.objects.get(slug=slug),
            "strategy": STRATEGY,
            "requester": User.objects.get(pk=scene.user.pk),
            "change_ticket": TICKET,
        }
        return lambda: evaluate(**kwargs)

    return prepare


def start_check(scene: Scene) -> Callable[[], Callable[[], object]]:
    """check_start() as start_next_queued calls it: the deployment read with the same select_related."""
    from apps.deployments.models import Deployment
    from apps.policies.services import check_start

    def prepare():
        deployment = Deployment.objects.select_related("release__application", "environment").get(
            pk=scene.deployment.pk
        )
        return lambda: check_start(deployment)

    return prepare


def all_passed(expected: int):
    def check(results) -> str:
        if len(results) != expected:
            return f"{len(results)} results, not {expected}"
        failed = [f"{r.key}: {r.message}" for r in results if not r.passed]
        return f"rules failed: {'; '.join(failed)}" if failed else ""

    return check


def starts(value) -> str:
    results, held, _ = value
    return held or ("" if results and all(r["passed"] for r in results) else f"unexpected results {results}")


def rule_context(scene: Scene, slug: str):
    """The context evaluate() gives every rule of one evaluation, its objects read as in case 2 and 3."""
    from django.utils import timezone

    from apps.accounts.models import User
    from apps.environments.models import Environment
    from apps.policies import rules
    from apps.releases.models import Release

    release = Release.objects.select_related("application").get(pk=scene.release.pk)
    return rules.Context(
        release=release,
        artifacts=[ra.artifact for ra in release.release_artifacts.select_related("artifact").order_by("position")],
        environment=Environment.objects.get(slug=slug),
        strategy=STRATEGY,
        requester=User.objects.get(pk=scene.user.pk),
        at=timezone.now(),
        change_ticket=TICKET,
    )


def cel_cases(scene: Scene, runs: int, slow_runs: int) -> list[Case]:
    """The expression rule's first evaluation in a fresh process against later ones; compile and evaluate alone."""
    import celpy
    from celpy.celparser import CELParser

    from apps.policies import rules

    ctx = rule_context(scene, "bench-one")
    params = {"expression": EXPRESSIONS[1]}
    check = rules.KINDS["expression"].check

    def passes(outcome) -> str:
        return "" if outcome.passed else outcome.message

    def fresh():
        rules._cel.cache_clear()  # the app's environment, its compiled programs ...
        rules._program.cache_clear()
        CELParser.CEL_PARSER = None  # ... and cel-python's grammar, built once per process
        return later()

    def later():  # a new evaluation: its context (the expression's variables) read anew
        context = rule_context(scene, "bench-one")
        return lambda: check(params, context)

    activation = {name: celpy.json_to_cel(value) for name, value in rules.cel_context(ctx).items()}
    program = rules._cel().program(rules._cel().compile(params["expression"]))
    return [
        measure("5. CEL rule, first in a fresh process", fresh, slow_runs, passes),
        measure("   CEL rule, later (program cached)", later, runs, passes),
        measure("   compile() alone", lambda: lambda: rules._cel().compile(params["expression"]), runs),
        measure("   evaluate() alone, compiled", lambda: lambda: program.evaluate(activation), runs),
        measure("   a thread started and joined alone", lambda: thread_round_trip, runs),
    ]


def thread_round_trip() -> None:
    """What the rule's time limit adds: the expression runs in a thread of its own, joined with a timeout."""
    worker = threading.Thread(target=lambda: None, daemon=True)
    worker.start()
    worker.join(1)


def queries_per_rule(scene: Scene) -> list[tuple[str, int, int]]:
    """(kind, statements of its first rule, of a further one) in one evaluation: the check called twice."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.policies import rules

    ctx = rule_context(scene, "bench-one")
    counts = []
    for kind in RULE_ORDER:
        params = rule(kind, ctx.environment)["params"]
        sent = []
        for _ in range(2):
            with CaptureQueriesContext(connection) as captured:
                rules.KINDS[kind].check(params, ctx)
            sent.append(len(captured.captured_queries))
        counts.append((kind, *sent))
    return counts


# --- Main ----------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="timed calls of each case (default 200)")
    parser.add_argument(
        "--slow-runs",
        type=int,
        default=30,
        help="timed calls of case 3 and of the first CEL evaluation in a fresh process (default 30)",
    )
    args = parser.parse_args()
    if args.runs < 1 or args.slow_runs < 1:
        parser.error("--runs and --slow-runs >= 1")
    signal.signal(signal.SIGTERM, _interrupted)

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
        os.environ.update(env)  # this process seeds and measures: the same settings as the migration
        import django

        django.setup()
        from apps.environments.models import Environment
        from apps.policies import rules
        from apps.policies.services import policy_set_create

        if set(RULE_ORDER) != set(rules.KINDS):
            raise BenchError(f"the rule kinds are now {', '.join(rules.KINDS)}: update RULE_ORDER and rule()")
        began = time.perf_counter()
        scene = seed()
        one, many = scene.environments["bench-one"], scene.environments["bench-many"]
        policy_set_create(
            actor=None,
            slug="bench-every-kind",
            name="Every kind",
            environments=[one],
            rules=[rule(k, one) for k in RULE_ORDER],
        )
        scene.deployment = queued_deployment(scene)
        print(f"seeded in {time.perf_counter() - began:.1f} s")

        busy_before = cpu_busy()
        bare = scene.environments["bench-bare"].pk
        cases = [
            measure(
                "0. floor: one ORM read, environment by pk", lambda: lambda: Environment.objects.get(pk=bare), args.runs
            ),
            measure("1. evaluate, no policy set", evaluation(scene, "bench-bare"), args.runs, all_passed(0)),
            measure(
                f"2. evaluate, 1 set x {len(RULE_ORDER)} rules (each kind)",
                evaluation(scene, "bench-one"),
                args.runs,
                all_passed(len(RULE_ORDER)),
            ),
            measure("4. check_start, queued deployment of 2", start_check(scene), args.runs, starts),
        ]
        began = time.perf_counter()
        case_three_sets(many)
        print(f"case 3's {SETS} sets of {RULES_PER_SET} rules created in {time.perf_counter() - began:.1f} s")
        cases.insert(
            3,
            measure(
                f"3. evaluate, {SETS} sets x {RULES_PER_SET} rules (5 CEL each)",
                evaluation(scene, "bench-many"),
                args.slow_runs,
                all_passed(SETS * RULES_PER_SET),
            ),
        )
        cases += cel_cases(scene, args.runs, args.slow_runs)
        busy_after = cpu_busy()

        print(f"\n{'case':<46} {'runs':>5} {'queries':>8} {'median ms':>10} {'p95 ms':>8}")
        for case in cases:
            print(
                f"{case.name:<46} {len(case.timings_ms):>5} {case.queries:>8} {case.median():>10.2f} {case.p95():>8.2f}"
            )

        print("\nSQL statements of a rule in one evaluation: the first of its kind, each further one")
        growing = []
        for kind, first, further in queries_per_rule(scene):
            print(f"  {kind:<24} {first:>3} {further:>3}")
            if further:
                growing.append(kind)
        if growing:
            print(f"  each further rule queries again: {', '.join(growing)}")

        busy = {"before": busy_before, "after": busy_after}
        if any(b is not None and b > BUSY for b in busy.values()):
            shown = ", ".join(f"{b:.0%} {when}" for when, b in busy.items() if b is not None)
            print(f"warning: other processes kept the CPUs busy ({shown} the runs): these figures are high")
        two, three = cases[2], cases[3]
        if three.queries > two.queries + EXTRA_QUERIES:
            print(
                f"\nFAIL case 3 sends {three.queries} SQL statements, case 2 {two.queries}: more than"
                f" {EXTRA_QUERIES} more, so evaluation queries per policy set or rule"
            )
            return 1
        print(f"\nok: case 3 sends {three.queries} SQL statements, case 2 {two.queries}")
        return 0
    except BenchError as exc:
        print(f"policies: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("policies: interrupted", file=sys.stderr)
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
                print(f"policies: could not drop database {name}: {exc}", file=sys.stderr)
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
