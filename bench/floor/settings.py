"""ReleaseHub's settings plus the bench-only floor app (bench/register_artifacts.py runs gunicorn with these).

Everything else, including the middleware stack, is exactly releasehub.settings, read from the environment.
"""

from releasehub.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "bench.floor"]  # noqa: F405
ROOT_URLCONF = "bench.floor.urls"
