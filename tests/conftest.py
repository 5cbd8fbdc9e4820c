"""Fixtures shared by the whole suite.

Tests run against the database and broker the environment names (DATABASE_URL,
CELERY_BROKER_URL), or the embedded defaults: SQLite and the file-system broker. Each
test process gets a broker namespace of its own, so parallel runs never steal each
other's tasks.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid

import pytest
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient

from releasehub.celery import app as celery_app

# With RELEASEHUB_REQUIRE_ALL=1 (CI), a test that would be skipped for a missing dependency fails instead.
REQUIRE_ALL = os.environ.get("RELEASEHUB_REQUIRE_ALL") == "1"


def require(condition: bool, reason: str) -> None:
    """Skip the calling test unless `condition`; in CI (RELEASEHUB_REQUIRE_ALL=1) fail instead."""
    if condition:
        return
    if REQUIRE_ALL:
        pytest.fail(f"missing dependency (RELEASEHUB_REQUIRE_ALL=1): {reason}")
    pytest.skip(reason)


def pytest_configure(config) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only
    # Serve static files from the source folders: tests do not run collectstatic.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    namespace = f"rhtest-{uuid.uuid4().hex[:8]}"
    options = dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        root = tempfile.mkdtemp(prefix=f"{namespace}-broker-")
        config.add_cleanup(lambda: shutil.rmtree(root, ignore_errors=True))
        for key, sub in (
            ("data_folder_in", "queue"),
            ("data_folder_out", "queue"),
            ("control_folder", "control"),
            ("processed_folder", "processed"),
        ):
            os.makedirs(os.path.join(root, sub), exist_ok=True)
            options[key] = os.path.join(root, sub)
    else:
        options["global_keyprefix"] = f"{namespace}:"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = options
    celery_app.conf.broker_transport_options = options


@pytest.fixture(autouse=True)
def _clear_cache():
    """Throttle counters live in the cache; every test starts with none."""
    cache.clear()
    yield
    cache.clear()


def on_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


@pytest.fixture
def make_user(db):
    from apps.accounts.models import User

    def make(username: str | None = None, **fields) -> User:
        username = username or f"user-{uuid.uuid4().hex[:6]}"
        user = User(username=username, email=f"{username}@example.com", **fields)
        user.set_password("pw")
        user.save()
        return user

    return make


@pytest.fixture
def user(make_user):
    return make_user("ursula", first_name="Ursula", last_name="Lind")


@pytest.fixture
def other_user(make_user):
    return make_user("oscar")


@pytest.fixture
def make_token(db):
    """make_token(user, scopes=["read"], **kwargs) -> (ApiToken, raw token text), created by the service."""
    from apps.accounts.services import token_create

    def make(owner, scopes=("read",), name="ci", **kwargs):
        return token_create(user=owner, name=name, scopes=list(scopes), **kwargs)

    return make


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def token_client(make_token, user):
    """token_client(scopes=..., owner=user) -> APIClient sending `Authorization: Bearer <token>`."""

    def make(scopes=("read",), owner=None) -> APIClient:
        _, raw = make_token(owner or user, scopes=scopes)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client

    return make


@pytest.fixture
def session_client(user) -> APIClient:
    """A browser session (CSRF is checked in tests of its own)."""
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker (solo pool, in a thread of this process) consuming from the configured broker."""
    from celery.contrib.testing.worker import start_worker

    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30) as worker:
        yield worker
