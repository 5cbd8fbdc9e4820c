"""`make run`'s demo: a release of the seeded data deploys for real to the seeded dev environment."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from django.core.management import call_command
from django.test import override_settings

from apps.deployments.services import deployment_create
from apps.environments.models import Environment
from apps.releases.models import Release
from tests.deployments.conftest import wait_for


def test_the_demo_release_deploys_to_dev_with_a_rolling_strategy(tmp_path, http_server, celery_worker, monkeypatch):
    monkeypatch.setenv("RELEASEHUB_BIND", http_server.url.removeprefix("http://"))
    http_server.files["/healthz"] = b"ok"  # what ReleaseHub's /healthz answers while `make run` serves
    with override_settings(VAR_DIR=tmp_path):
        call_command("seed_demo", stdout=StringIO())
        call_command("seed_demo", stdout=StringIO())  # idempotent
        release = Release.objects.get(application__slug="payments-api", version="1.4.2")
        dev = Environment.objects.get(slug="dev")
        deployment = deployment_create(
            actor=None, release=release, environment=dev, strategy="rolling", strategy_options={"batch_size": 2}
        )
        deployment = wait_for(deployment, timeout=90)
    assert deployment.status == "succeeded", deployment.status_reason
    for name in ("dev-1", "dev-2", "dev-3", "dev-4"):
        target = tmp_path / "demo" / "targets" / name
        assert Path(target / "current").readlink() == Path("releases/1.4.2")
        assert (target / "current" / "app.env").read_text() == "LOG_LEVEL=debug\nREPLICAS=1\n"
