"""Real targets for drift and compare tests: the deployment tests' directory targets behind a local HTTP server
(`stage`, `http_server`), and the notification tests' local webhook receiver (`hook_server`)."""

from __future__ import annotations

from apps.deployments.models import Deployment
from apps.deployments.services import deployment_create
from apps.notifications.models import Subscription
from apps.notifications.services import subscription_create
from tests.deployments.conftest import http_server, slots, stage, wait_for  # noqa: F401  (fixtures used by these tests)
from tests.notifications.conftest import SECRET, hook_server  # noqa: F401

__all__ = ["deploy", "subscribe_to_drift"]


def deploy(s, version: str, **options) -> Deployment:
    """Deploy release `version` of the stage's application as its deployer, through the real worker, and wait
    until it ends; it must succeed."""
    options.setdefault("template", s.template)
    deployment = wait_for(
        deployment_create(actor=s.deployer, release=s.releases[version], environment=s.environment, **options)
    )
    assert deployment.status == "succeeded", deployment.status_reason
    return deployment


def subscribe_to_drift(owner, environment, server) -> Subscription:
    """`owner`'s signed webhook to the local receiver for drift.detected in `environment`."""
    return subscription_create(
        actor=owner,
        events=["drift.detected"],
        channel="webhook",
        environment=environment,
        url=f"{server.url}/drift",
        secret=SECRET,
    )
