"""Inventory pages after real deployments: search, an environment's inventory tab with time travel, a target's
installation history, the application's "where deployed" matrix, the comparison page and its downloads, the
release page's "what would change", and the dashboard matrix at 500 applications by 20 environments."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from apps.catalog.models import Application, Artifact
from apps.catalog.versions import version_sort_key
from apps.deployments.models import Deployment, DeploymentStatus, TemplateVersion
from apps.deployments.services import deployment_create
from apps.environments.models import Environment, Target
from apps.environments.services import environment_grant
from apps.inventory.models import Installation
from apps.releases.models import Release
from tests.deployments.conftest import RELEASE_DIR, make_template, wait_for
from tests.factories import make_environment, make_team, make_user


def page(client: Client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, response.content[:500]
    return response.content.decode()


@pytest.fixture
def deployed(stage, celery_worker):
    """A stage where 1.0.0 was deployed, then 2.0.0 by a rolling deployment; a signed-in deployer."""
    s = stage(targets=2)
    first = wait_for(
        deployment_create(actor=s.deployer, release=s.releases["1.0.0"], environment=s.environment, template=s.template)
    )
    between = timezone.now()
    second = wait_for(
        deployment_create(
            actor=s.deployer,
            release=s.releases["2.0.0"],
            environment=s.environment,
            template=s.template,
            strategy="rolling",
            strategy_options={"batch_size": 1},
        )
    )
    assert (first.status, second.status) == ("succeeded", "succeeded")
    client = Client()
    client.force_login(s.deployer)
    return s, client, first, second, between


def test_search_answers_where_a_version_a_digest_or_a_commit_runs(deployed, django_assert_max_num_queries):
    s, client, _first, second, _ = deployed
    new = s.releases["2.0.0"].release_artifacts.get().artifact
    client.get("/inventory/")  # the session's first request warms what every page reads once
    with django_assert_max_num_queries(14):
        html = page(client, f"/inventory/?q={s.application.slug}+2.0.0")
    assert html.count('data-testid="search-result"') == 1
    assert [int(n) for n in re.findall(r'data-testid="location-deployment">#(\d+)<', html)] == [second.pk] * 2
    by_digest = page(client, f"/inventory/?q={new.digest[7:19]}")  # the start of the digest, without sha256:
    assert f"#{second.pk}" in by_digest
    assert "2.0.0" in by_digest
    assert "Runs nowhere now." in page(client, f"/inventory/?q={s.application.slug}+1.0.0")
    assert 'data-testid="search-empty"' in page(client, "/inventory/?q=no-such-thing+9.9.9")
    assert 'data-testid="search-empty"' not in page(client, "/inventory/?q=%00")  # no search at all

    stranger = Client()
    stranger.force_login(make_user("stranger"))
    assert 'data-testid="search-empty"' in page(stranger, f"/inventory/?q={s.application.slug}+2.0.0")


def test_the_inventory_tab_shows_now_and_travels_back_in_time(deployed):
    s, client, first, second, between = deployed
    url = f"/environments/{s.environment.slug}/inventory/"
    now = page(client, url)
    assert now.count(f">#{second.pk}<") == 2
    assert f">#{first.pk}<" not in now
    local = timezone.localtime(between, timezone=ZoneInfo(s.environment.timezone))
    then = page(client, f"{url}?at={local.replace(tzinfo=None).isoformat()}")
    assert then.count(f">#{first.pk}<") == 2
    assert f">#{second.pk}<" not in then
    assert "What ran here on" in then
    before = page(client, f"{url}?at=2000-01-01T00:00")
    assert "Nothing ran here then." in before
    assert "Give a date and time" in page(client, f"{url}?at=yesterday")
    for far in ("9999-12-31T23:59-12:00", "0001-01-01T00:00%2B14:00"):  # beyond what time zones can show
        assert "Give a date and time" in page(client, f"{url}?at={far}")
    assert "What runs here now" in page(client, f"{url}?at=%00")  # a value no column can hold reads as none

    # Someone who may view the environment but not the application sees neither its present nor its past.
    viewer = make_user("viewer")
    environment_grant(actor=None, environment=s.environment, team=make_team(members=(viewer,)), action="view")
    other = Client()
    other.force_login(viewer)
    for address in (url, f"{url}?at={local.replace(tzinfo=None).isoformat()}"):
        html = page(other, address)
        assert f">#{first.pk}<" not in html
        assert f">#{second.pk}<" not in html


def test_a_targets_history_lists_each_installation(deployed):
    s, client, first, second, _ = deployed
    target = s.targets[0]
    html = page(client, f"/environments/{s.environment.slug}/targets/{target.pk}/")
    timeline = html.split('data-testid="target-timeline"')[1].split("</section>")[0]
    assert timeline.index(f">#{second.pk}<") < timeline.index(f">#{first.pk}<")  # newest first
    assert timeline.count(">now<") == 1
    other = Client()
    other.force_login(make_user("outsider"))
    page(other, f"/environments/{s.environment.slug}/targets/{target.pk}/", status=404)


def test_the_application_page_says_where_it_runs(deployed):
    s, client, _, second, _ = deployed
    html = page(client, f"/applications/{s.application.slug}/")
    card = html.split('data-testid="where-deployed"')[1].split("</section>")[0]
    assert s.environment.name in card
    assert "2.0.0" in card
    assert "\u00d72" in card
    assert f"/deployments/{second.pk}/" in card


def test_the_release_page_previews_what_would_change(deployed):
    s, client, *_ = deployed
    s.add_release("3.0.0")
    release = s.releases["3.0.0"]
    html = page(client, f"/releases/{release.pk}/preview/?environment={s.environment.slug}&template={s.template.slug}")
    box = html.split('data-testid="what-would-change"')[1].split('<ol class="small mb-3">')[0]
    assert box.count('data-testid="change-row"') == 2
    assert '2.0.0</span> → <strong class="font-monospace">3.0.0' in box
    assert "No approval needed" in html


def test_the_compare_page_and_its_downloads(deployed):
    s, client, *_ = deployed
    other = make_environment(s.environment.owner_team, "other")
    base = f"/inventory/compare/?left={s.environment.slug}&right={other.slug}"
    html = page(client, base)
    assert 'data-status="only_left"' in html
    markdown = client.get(base + "&format=md")
    assert markdown["Content-Disposition"] == f'attachment; filename="compare-{s.environment.slug}-other.md"'
    assert f"| {s.application.slug} | 2.0.0 | — | differs |" in markdown.content.decode()
    assert f'href="/api/v1/environments/compare/?left={s.environment.slug}&amp;right=other"' in html
    data = client.get(f"/api/v1/environments/compare/?left={s.environment.slug}&right=other").json()
    assert data["applications"][0]["left"]["versions"] == ["2.0.0"]
    assert "No such environment on the right" in page(client, f"/inventory/compare/?left={s.environment.slug}&right=x")
    assert "No such environment on the right" in page(
        client, f"/inventory/compare/?left={s.environment.slug}&right=%00"
    )
    api = client.get(f"/api/v1/environments/compare/?left={s.environment.slug}&right=%00")
    assert api.status_code == 400
    assert "right" in api.json()["fields"]


@pytest.mark.django_db
def test_the_dashboard_matrix_of_500_applications_by_20_environments_is_a_constant_number_of_queries(
    django_assert_max_num_queries,
):
    """Every cell deployed (and the deployment recorded on a target), a few cells with a newer deployment that is
    running, failed or waiting, one drifted: each cell shows its version and state, and the page costs the same
    few queries whatever the size."""
    team = make_team()
    admin = make_user("admin", is_superuser=True, is_staff=True)
    environments = Environment.objects.bulk_create(
        Environment(slug=f"env-{i:02}", name=f"Env {i:02}", owner_team=team, tier="production" if i else "development")
        for i in range(20)
    )
    targets = Target.objects.bulk_create(Target(environment=e, name="web-1", address="h") for e in environments)
    applications = Application.objects.bulk_create(
        Application(slug=f"app-{i:03}", name=f"App {i:03}", owner_team=team) for i in range(500)
    )
    artifacts = Artifact.objects.bulk_create(
        Artifact(
            application=a,
            version="1.0.0",
            version_key=version_sort_key("1.0.0", timezone.now()),
            digest="sha256:" + hashlib.sha256(a.slug.encode()).hexdigest(),
            uri="https://x/a.tgz",
            registered_at=timezone.now(),
            registered_by=admin,
        )
        for a in applications
    )
    releases = Release.objects.bulk_create(Release(application=a, version="1.0.0") for a in applications)
    version = TemplateVersion.objects.get(template=make_template(RELEASE_DIR))
    cells = [
        (a, r, art, e, t)
        for a, r, art in zip(applications, releases, artifacts, strict=False)
        for e, t in zip(environments, targets, strict=False)
    ]
    deployments = Deployment.objects.bulk_create(
        Deployment(
            release=r,
            environment=e,
            application=a,
            template_version=version,
            strategy="all_at_once",
            status=DeploymentStatus.SUCCEEDED,
            plan={},
            plan_digest="0" * 64,
        )
        for a, r, _, e, _ in cells
    )
    since = timezone.now() - timedelta(days=1)
    Installation.objects.bulk_create(
        Installation(environment=e, target=t, application=a, artifact=art, deployment=d, since=since)
        for (a, _, art, e, t), d in zip(cells, deployments, strict=False)
    )
    newer = {"running": DeploymentStatus.RUNNING, "failed": DeploymentStatus.FAILED}
    for index, (_state, status) in enumerate(newer.items()):
        a, r, _, e, _ = cells[index]
        Deployment.objects.create(
            release=r, environment=e, application=a, template_version=version, status=status, plan={}, plan_digest="1"
        )
    from apps.inventory.models import Observation

    a, _, _, e, t = cells[2]
    Observation.objects.create(
        environment=e, target=t, application=a, version="0.9", source="report", observed_at=since, drifted=True
    )

    client = Client()
    client.force_login(admin)
    client.get("/?page=2")
    with django_assert_max_num_queries(15):
        html = page(client, "/?page=1")
    with django_assert_max_num_queries(15):
        page(client, "/?page=5")
    matrix = html.split('data-testid="matrix"')[1].split("</table>")[0]
    states = re.findall(r'data-state="(\w+)"', matrix)
    assert len(states) == 100 * 20  # a page of 100 applications
    assert states[:3] == ["running", "failed", "drifted"]
    assert set(states[3:]) == {"succeeded"}
    assert "applications 1\u2013100 of 500" in html


@pytest.mark.django_db
def test_the_dashboard_filters_by_team_and_lifecycle():
    from tests.factories import build_world

    world = build_world()
    client = Client()
    client.force_login(world.root)
    everything = page(client, "/")
    assert "Payments App" in everything
    assert "Storefront App" in everything
    payments = page(client, "/?team=payments", status=200)
    assert "Payments App" in payments
    assert "Storefront App" not in payments
    Application.objects.filter(slug="payments-app").update(lifecycle=world.lifecycles["spare"])
    fragment = client.get("/?lifecycle=spare", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment
    assert 'data-testid="matrix"' in fragment
    assert "Payments Dev" in fragment.split("<tbody>")[0]  # the lifecycle's environment is a column
    assert "Storefront Dev" not in fragment
    assert "Payments App" in fragment
    assert "Payments Lib" not in fragment
    for unknown in ("team=nobody", "lifecycle=nothing", "team=%00"):
        assert "No application matches these filters." in page(client, f"/?{unknown}")


def test_check_drift_on_the_inventory_tab_reads_every_target_and_says_what_it_could_not_read(deployed):
    """The stage's health URLs answer "ok": no version, so no reading (and no false drift); a target reading
    another version is flagged on the tab."""
    s, client, *_ = deployed
    url = f"/environments/{s.environment.slug}/inventory/"
    response = client.post(f"{url}check/", follow=True)
    html = response.content.decode()
    assert "Not read: web-1, web-2: no version in the answer." in html
    assert 'data-testid="drift-alert"' not in html
    s.server.roots["web-1"] = s.root / "web-1"
    s.targets[0].health_check_url = f"{s.server.url}/version/web-1"
    s.targets[0].save()
    (s.root / "web-1" / "current" / "VERSION").write_text("1.9.9")  # changed by hand
    html = client.post(f"{url}check/", follow=True).content.decode()
    assert "Not read: web-2: no version in the answer." in html
    assert "drifted: runs 1.9.9" in html
    viewer = Client()
    viewer.force_login(make_user("looker"))
    assert viewer.post(f"{url}check/").status_code == 404
