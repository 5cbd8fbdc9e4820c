"""ReleaseHub's settings plus the bench-only floor app (bench/register_artifacts.py runs gunicorn with these,
bench/engine.py its Celery workers).

Everything else, including the middleware stack, is exactly releasehub.settings, read from the environment,
except that BENCH_REDIS_KEYPREFIX, when set, prefixes every Redis key of the broker (kombu's
global_keyprefix), so that a benchmark's queues never mix with those of other users of the same Redis.
"""

import os

from releasehub.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "bench.floor"]  # noqa: F405
ROOT_URLCONF = "bench.floor.urls"

_prefix = os.environ.get("BENCH_REDIS_KEYPREFIX", "")
if _prefix and CELERY_BROKER_URL.startswith(("redis://", "rediss://")):  # noqa: F405
    CELERY_BROKER_TRANSPORT_OPTIONS = {**CELERY_BROKER_TRANSPORT_OPTIONS, "global_keyprefix": _prefix}  # noqa: F405
