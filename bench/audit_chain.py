"""Audit trail figures: appends per second (one and several writers), chain verification speed,
and the latency of the authenticated audit-events API.

    .venv/bin/python bench/audit_chain.py [--events 3000] [--threads 4]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/releasehub .venv/bin/python bench/audit_chain.py

Runs in a throw-away database (Django's test database: created, then dropped), never in yours.
"""

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "releasehub.settings")

import django

django.setup()

from django.db import connection, connections  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402


def appends(count: int) -> float:
    from apps.audit.services import audit_record

    start = time.perf_counter()
    for i in range(count):
        audit_record(verb="bench.append", object_type="bench.thing", object_id=i, details={"i": i})
    return count / (time.perf_counter() - start)


def concurrent_appends(count: int, threads: int) -> float:
    from apps.audit.services import audit_record

    def work(n: int) -> None:
        for i in range(n):
            audit_record(verb="bench.concurrent", object_id=i, details={"i": i})
        connections.close_all()

    workers = [threading.Thread(target=work, args=(count // threads,)) for _ in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return (count // threads * threads) / (time.perf_counter() - start)


def api_latency(requests: int) -> tuple[float, float, float]:
    from apps.accounts.models import User
    from apps.accounts.services import token_create

    user = User.objects.create_superuser("bench", "bench@example.com", "x")
    _, raw = token_create(user=user, name="bench", scopes=["read"])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    timings = []
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get("/api/v1/audit-events/?page_size=50")
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.content
    quantiles = statistics.quantiles(timings, n=100)
    return quantiles[49], quantiles[94], quantiles[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from apps.audit.services import audit_chain_check

        print(f"database: {connection.vendor}")
        print(f"append, 1 writer:          {appends(args.events):8.0f} events/s  ({args.events} events)")
        rate = concurrent_appends(args.events, args.threads)
        print(f"append, {args.threads} writers:         {rate:8.0f} events/s  ({args.events} events)")
        start = time.perf_counter()
        report = audit_chain_check()
        elapsed = time.perf_counter() - start
        assert report.ok, report
        print(f"verify chain:              {report.checked / elapsed:8.0f} events/s  ({report.checked} events, OK)")
        p50, p95, p99 = api_latency(args.requests)
        print(
            f"GET /api/v1/audit-events/ (50 per page, token auth): p50 {p50:.1f} ms  p95 {p95:.1f} ms  p99 {p99:.1f} ms"
        )
    finally:
        connections.close_all()
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
