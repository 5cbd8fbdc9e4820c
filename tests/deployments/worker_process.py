"""A Celery worker in its own process, on the test database and the test's broker namespace, so a test
can kill it with SIGKILL the way a machine loses a worker.

    python tests/reliability/worker_process.py   (env: RELEASEHUB_TEST_DB, RELEASEHUB_TEST_BROKER_OPTIONS)
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "releasehub.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402

from releasehub.celery import app  # noqa: E402

settings.DATABASES["default"]["NAME"] = os.environ["RELEASEHUB_TEST_DB"]
options = json.loads(os.environ["RELEASEHUB_TEST_BROKER_OPTIONS"])
settings.CELERY_BROKER_TRANSPORT_OPTIONS = options
app.conf.broker_transport_options = options
app.worker_main(["worker", "--pool=solo", "--loglevel=INFO", "--without-mingle", "--without-gossip"])
