"""`make run`'s demo: a release of the seeded data deploys for real to the seeded dev environment."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from io import StringIO
from pathlib import Path

import yaml
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from apps.approvals.models import ApprovalPolicy
from apps.deployments.services import deployment_create
from apps.environments.models import Environment
from apps.gitops.models import EnvironmentRepository
from apps.releases.models import Release
from apps.scheduling.models import FreezeWindow
from apps.scheduling.services import booking_request
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


def test_the_demo_production_deploys_blue_green_and_points_its_live_link_at_the_new_slot(
    tmp_path, http_server, celery_worker, monkeypatch
):
    monkeypatch.setenv("RELEASEHUB_BIND", http_server.url.removeprefix("http://"))
    http_server.files["/healthz"] = b"ok"
    with override_settings(VAR_DIR=tmp_path):
        call_command("seed_demo", stdout=StringIO())
        prod = Environment.objects.get(slug="prod")
        ApprovalPolicy.objects.filter(environment=prod).delete()  # no approvers in this test
        FreezeWindow.objects.update(active=False)  # the demo's Friday evening freeze may be on now
        now = timezone.now()
        booking_request(actor=None, environment=prod, starts_at=now, ends_at=now + timedelta(hours=1), title="demo")
        release = Release.objects.get(application__slug="payments-api", version="1.4.2")
        deployment = deployment_create(
            actor=None,
            release=release,
            environment=prod,
            strategy_options={"keep_old_slot_for": 0},
            override_reason="The lifecycle's earlier stages are not part of this test.",
        )
        assert deployment.strategy == "blue_green"
        deployment = wait_for(deployment, timeout=90)
    assert deployment.status == "succeeded", deployment.status_reason
    targets = tmp_path / "demo" / "targets"
    assert (targets / "prod-live").readlink() == Path("prod-green-1")
    assert (targets / "prod-green-1" / "current").readlink() == Path("releases/1.4.2")
    assert not (targets / "prod-blue-1").exists()
    prod.refresh_from_db()
    assert prod.live_slot == "green"


def test_the_demo_preview_is_in_pull_mode_and_a_deployment_commits_its_manifest(tmp_path, celery_worker):
    with override_settings(VAR_DIR=tmp_path):
        call_command("seed_demo", stdout=StringIO())
        rows = EnvironmentRepository.history.count()
        call_command("seed_demo", stdout=StringIO())  # idempotent: the repository is left as it is
        assert EnvironmentRepository.history.count() == rows == 1
        preview = Environment.objects.get(slug="preview")
        assert preview.default_template.slug == "gitops"
        repository = preview.repository
        origin = tmp_path / "demo" / "gitops" / "environments.git"
        assert (repository.url, repository.branch, repository.path) == (
            str(origin),
            "main",
            "preview/{{ release.application }}.yaml",
        )
        assert not preview.lifecycle_stages.exists()
        release = Release.objects.get(application__slug="payments-api", version="1.4.2")
        deployment = deployment_create(actor=None, release=release, environment=preview)  # its own template
        deployment = wait_for(deployment, timeout=90)
    assert deployment.status == "succeeded", deployment.status_reason
    manifest = subprocess.run(
        ["git", "--git-dir", str(origin), "show", "main:preview/payments-api.yaml"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    document = yaml.safe_load(manifest)
    assert document["kind"] == "Deployment"
    assert document["metadata"]["labels"]["app.kubernetes.io/version"] == "1.4.2"
    annotations = document["spec"]["template"]["metadata"]["annotations"]
    assert annotations["releasehub.example.com/digest"] == release.artifacts.get().digest
