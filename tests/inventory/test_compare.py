"""Comparing two environments: exactly the planted differences, secrets compared but never shown.

The two environments are built through the services with the same targets and variables, then made to
differ in known ways; the deployed versions come from real deployments (release_dir through the worker).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.services import team_add_member
from apps.approvals.services import policy_remove, policy_set
from apps.catalog.services import application_grant
from apps.deployments.services import deployment_create
from apps.environments.models import MASK, Variable
from apps.environments.services import environment_grant, environment_update, variable_create
from apps.policies.services import policy_set_create
from apps.releases.services import release_create
from apps.scheduling.services import freeze_create
from tests.deployments.conftest import RELEASE_DIR, make_template, tarball, wait_for
from tests.factories import (
    bearer_client,
    make_application,
    make_environment,
    make_target,
    make_team,
    make_user,
    register,
)

REPOSITORY = "https://github.com/acme/shop.git"
SECRETS = {
    "DB_PASSWORD": ("same-pl4intext-on-both", "same-pl4intext-on-both"),
    "API_KEY": ("left-k3y-0123456789", "right-k3y-9876543210"),
}


def commit_of(version: str) -> str:
    """A 40-hex-digit commit id, as git prints it."""
    return hashlib.sha256(version.encode()).hexdigest()[:40]


@dataclass
class Pair:
    left: object
    right: object
    user: object
    application: object
    template: object
    artifacts: dict = field(default_factory=dict)
    deployments: dict = field(default_factory=dict)
    freezes: dict = field(default_factory=dict)
    policy: object = None


@pytest.fixture
def pair(http_server, tmp_path, celery_worker) -> Pair:
    """Environments "left" and "right" of one team, the same except for what each line marked PLANTED says."""
    ci, user = make_user(), make_user()
    team = make_team(members=(ci, user))
    left = make_environment(team, name="Left")
    right = make_environment(team, name="Right")
    application = make_application(team, slug="shop", repository_url=REPOSITORY)
    template = make_template(RELEASE_DIR)

    artifacts = {}
    for version in ("0.9.0", "1.0.0", "1.1.0", "1.2.0", "2.0.0", "2.1.0"):
        http_server.files[f"/shop-{version}.tar.gz"] = body = tarball(version)
        artifacts[version] = register(
            application,
            version,
            by=ci,
            digest="sha256:" + hashlib.sha256(body).hexdigest(),
            uri=f"{http_server.url}/shop-{version}.tar.gz",
            commit="" if version == "1.2.0" else commit_of(version),  # a build without a commit is not listed
            branch="main",
        )

    # Targets: web-1 the same on both sides (the same path, as on twin hosts); web-2 PLANTED with another address
    # and attributes on the right; batch-1 PLANTED on the left only, cache-1 on the right only.
    for environment, address, cpus in ((left, "web-2.internal", 2), (right, "web-2b.internal", 4)):
        make_target(environment, "web-1", address="web-1.internal", path=str(tmp_path / "web-1"))
        make_target(environment, "web-2", address=address, path=str(tmp_path / "web-2"), attributes={"cpus": cpus})
    make_target(left, "batch-1", address="batch-1.internal", path=str(tmp_path / "batch-1"))
    make_target(right, "cache-1", address="cache-1.internal", path=str(tmp_path / "cache-1"))

    # PLANTED: 1.0.0 runs on the left, 2.0.0 on the right.
    deployments = {}
    for environment, version in ((left, "1.0.0"), (right, "2.0.0")):
        release = release_create(actor=None, application=application, artifacts=[artifacts[version]])
        deployment = wait_for(
            deployment_create(actor=user, release=release, environment=environment, template=template)
        )
        assert deployment.status == "succeeded", deployment.status_reason
        deployments[version] = deployment

    # Variables: LOG_FORMAT, DB_PASSWORD (secret, the same plaintext) and web-1's DB_HOST override the same.
    for environment, log_level, api_key in (
        (left, "info", SECRETS["API_KEY"][0]),
        (right, "debug", SECRETS["API_KEY"][1]),
    ):
        web1 = environment.targets.get(name="web-1")
        variable_create(actor=None, environment=environment, name="LOG_FORMAT", value="json")
        variable_create(
            actor=None, environment=environment, name="DB_PASSWORD", value=SECRETS["DB_PASSWORD"][0], secret=True
        )
        variable_create(actor=None, environment=environment, name="DB_HOST", value="db-1", target=web1)
        variable_create(actor=None, environment=environment, name="LOG_LEVEL", value=log_level)  # PLANTED
        variable_create(actor=None, environment=environment, name="API_KEY", value=api_key, secret=True)  # PLANTED
    variable_create(actor=None, environment=left, name="ONLY_LEFT", value="l")  # PLANTED
    variable_create(actor=None, environment=right, name="ONLY_RIGHT", value="r")  # PLANTED
    variable_create(  # PLANTED: an override of web-1 on the right only
        actor=None, environment=right, name="WORKERS", value="8", target=right.targets.get(name="web-1")
    )

    # Settings, template, approvals and freezes: after the deployments, which they would otherwise hold up.
    environment_update(actor=None, environment=right, timezone="Europe/Berlin", requires_booking=True)  # PLANTED
    environment_update(actor=None, environment=left, default_template=template)  # PLANTED
    policy = policy_set(  # PLANTED
        actor=None, environment=right, required_approvals=2, eligible_teams=[team], expires_after=timedelta(hours=12)
    )
    policy_set_create(  # PLANTED
        actor=None,
        slug="right-guard",
        name="Right guard",
        environments=[right],
        rules=[{"kind": "no_freeze"}],
    )
    now = timezone.now()
    freezes = {
        "both": freeze_create(
            actor=None,
            title="Year end",
            reason="Books close",
            starts_at=now + timedelta(days=3),
            ends_at=now + timedelta(days=5),
            environments=[left, right],
        ),
        "left": freeze_create(  # PLANTED
            actor=None,
            title="Left migration",
            reason="Storage move",
            starts_at=now + timedelta(days=1),
            ends_at=now + timedelta(days=2),
            environments=[left],
        ),
        "over": freeze_create(  # ended: not a difference any more
            actor=None,
            title="Old freeze",
            reason="Over",
            starts_at=now - timedelta(days=3),
            ends_at=now - timedelta(days=2),
            environments=[right],
        ),
    }
    left.refresh_from_db()
    right.refresh_from_db()
    return Pair(left, right, user, application, template, artifacts, deployments, freezes, policy)


def compare_url(p: Pair, **params) -> str:
    query = "&".join(f"{key}={value}" for key, value in {"left": p.left.slug, "right": p.right.slug, **params}.items())
    return f"/api/v1/environments/compare/?{query}"


def assert_no_secret_in(text: str) -> None:
    """Neither a secret's plaintext, nor its stored ciphertext, nor the keyed hash it is compared by."""
    for plaintexts in SECRETS.values():
        for plaintext in plaintexts:
            assert plaintext not in text
    secrets = list(Variable.objects.filter(secret=True))
    assert len(secrets) == 4
    for variable in secrets:
        assert variable.value not in text
        assert variable.fingerprint
        assert variable.fingerprint not in text
        assert variable.fingerprint[:16] not in text


def test_compare_of_two_seeded_environments_lists_exactly_the_planted_differences_never_a_secret(pair):
    p = pair
    client = bearer_client(p.user, scopes=("read",))
    response = client.get(compare_url(p))
    assert response.status_code == 200, response.content
    comparison = response.json()
    assert_no_secret_in(response.content.decode())

    assert (comparison["left"], comparison["right"]) == (
        {"slug": p.left.slug, "name": "Left", "tier": "development"},
        {"slug": p.right.slug, "name": "Right", "tier": "development"},
    )
    old, new = p.artifacts["1.0.0"], p.artifacts["2.0.0"]
    template = f"{p.template.slug} v1"
    assert comparison["applications"] == [
        {
            "application": "shop",
            "name": p.application.name,
            "status": "different",
            "left": {
                "versions": ["1.0.0"],
                "targets": 3,
                "digest": old.digest,
                "commit": old.commit,
                "template": template,
            },
            "right": {
                "versions": ["2.0.0"],
                "targets": 3,
                "digest": new.digest,
                "commit": new.commit,
                "template": template,
            },
            "commits": {
                "from": old.commit,
                "to": new.commit,
                # Registered after 1.0.0 up to 2.0.0, newest first; 1.2.0 has no commit, 0.9.0 and 2.1.0 are outside.
                "builds": [
                    {"version": "2.0.0", "commit": new.commit, "branch": "main"},
                    {"version": "1.1.0", "commit": commit_of("1.1.0"), "branch": "main"},
                ],
                "compare_url": f"https://github.com/acme/shop/compare/{old.commit}...{new.commit}",
            },
        }
    ]
    masked = {"value": MASK, "secret": True}
    assert comparison["variables"] == [
        {"name": "API_KEY", "target": None, "status": "different", "left": masked, "right": masked},
        {
            "name": "LOG_LEVEL",
            "target": None,
            "status": "different",
            "left": {"value": "info", "secret": False},
            "right": {"value": "debug", "secret": False},
        },
        {
            "name": "ONLY_LEFT",
            "target": None,
            "status": "only_left",
            "left": {"value": "l", "secret": False},
            "right": None,
        },
        {
            "name": "ONLY_RIGHT",
            "target": None,
            "status": "only_right",
            "left": None,
            "right": {"value": "r", "secret": False},
        },
        {
            "name": "WORKERS",
            "target": "web-1",
            "status": "only_right",
            "left": None,
            "right": {"value": "8", "secret": False},
        },
    ]
    assert comparison["identical_variables"] == 3  # LOG_FORMAT, DB_PASSWORD (secret), web-1's DB_HOST
    assert [(t["name"], t["status"], t["differences"]) for t in comparison["targets"]] == [
        ("batch-1", "only_left", []),
        ("cache-1", "only_right", []),
        ("web-1", "same", []),
        ("web-2", "different", ["address", "attributes"]),
    ]
    web2 = comparison["targets"][3]
    assert (web2["left"]["address"], web2["right"]["address"]) == ("web-2.internal", "web-2b.internal")
    assert (web2["left"]["attributes"], web2["right"]["attributes"]) == ({"cpus": 2}, {"cpus": 4})
    assert comparison["settings"] == [
        {"setting": "timezone", "label": "Timezone", "left": "UTC", "right": "Europe/Berlin", "same": False},
        {"setting": "requires_booking", "label": "Requires booking", "left": False, "right": True, "same": False},
    ]
    assert comparison["default_template"] == {"left": template, "right": None, "same": False}
    assert comparison["approval_policy"] == {
        "left": None,
        "right": {
            "required_approvals": 2,
            "eligible_teams": [p.policy.eligible_teams.get().slug],
            "expires_after_hours": 12.0,
            "rejection_rejects": True,
        },
        "same": False,
    }
    assert comparison["policy_sets"] == {"left": [], "right": ["right-guard"], "same": False}
    freezes = comparison["freezes"]
    assert [[f["title"] for f in freezes[side]] for side in ("both", "left", "right")] == [
        ["Year end"],
        ["Left migration"],
        [],
    ]
    assert freezes["left"][0]["id"] == p.freezes["left"].pk

    # The same comparison as the Markdown report to download.
    response = client.get(compare_url(p, format="md"))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="compare-{p.left.slug}-{p.right.slug}.md"'
    report = response.content.decode()
    assert_no_secret_in(report)
    lines = report.splitlines()
    assert lines[0] == "# Left compared with Right"
    link = f"https://github.com/acme/shop/compare/{old.commit}...{new.commit}"
    for line in (
        f"| shop | 1.0.0 | 2.0.0 | differs ([commits]({link})) |",
        "3 identical.",
        f"| API_KEY | — | {MASK} | {MASK} |",
        "| LOG_LEVEL | — | info | debug |",
        "| ONLY_LEFT | — | l | — |",
        "| ONLY_RIGHT | — | — | r |",
        "| WORKERS | web-1 | — | 8 |",
        "| batch-1 | only in Left |",
        "| cache-1 | only in Right |",
        "| web-1 | same |",
        "| web-2 | address, attributes |",
        "| timezone | UTC | Europe/Berlin |",
        "| requires_booking | False | True |",
        f"| default template | {template} | — |",
        "| policy sets | — | right-guard |",
    ):
        assert line in lines, line
    assert [line for line in lines if line.startswith("- ")] == [
        f"- Year end (both): from {freezes['both'][0]['starts_at']}",
        f"- Left migration (Left only): from {freezes['left'][0]['starts_at']}",
    ]
    assert not any("DB_PASSWORD" in line or "LOG_FORMAT" in line or "DB_HOST" in line for line in lines)


def test_compare_names_a_missing_unknown_or_hidden_environment_and_shows_only_visible_applications(pair):
    p = pair
    client = bearer_client(p.user, scopes=("read",))
    elsewhere = make_environment(make_team())  # exists, but p.user may not view it

    def refused(url: str) -> dict:
        response = client.get(url)
        assert response.status_code == 400, response.content
        return response.json()["fields"]

    base = "/api/v1/environments/compare/"
    assert refused(f"{base}?right={p.right.slug}") == {"left": ["Required."]}
    assert refused(f"{base}?left={p.left.slug}") == {"right": ["Required."]}
    assert refused(f"{base}?left={p.left.slug}&right=nowhere") == {"right": ["No such environment: 'nowhere'."]}
    hidden = refused(f"{base}?left={elsewhere.slug}&right={p.right.slug}")
    assert hidden == {"left": [f"No such environment: {elsewhere.slug!r}."]}  # the same answer as for no such slug
    assert refused(f"{base}?left={p.left.slug}&right={p.right.slug}".replace(p.right.slug, elsewhere.slug)) == {
        "right": [f"No such environment: {elsewhere.slug!r}."]
    }

    # Someone who may view both environments but not the application sees everything except its versions.
    auditor = make_user()
    auditors = make_team(members=(auditor,))
    for environment in (p.left, p.right):
        environment_grant(actor=None, environment=environment, team=auditors, action="view")
    response = bearer_client(auditor, scopes=("read",)).get(compare_url(p))
    assert response.status_code == 200, response.content
    seen = response.json()
    assert seen["applications"] == []
    # Whether two secrets are equal is for people who may manage both: it would confirm a guess of one.
    assert [v["name"] for v in seen["variables"]] == ["LOG_LEVEL", "ONLY_LEFT", "ONLY_RIGHT", "WORKERS"]
    assert seen["secrets_not_compared"] == 2
    assert seen["identical_variables"] == 2
    assert p.artifacts["1.0.0"].commit not in response.content.decode()
    application_grant(actor=None, application=p.application, team=auditors, action="view")
    assert [a["application"] for a in bearer_client(auditor).get(compare_url(p)).json()["applications"]] == ["shop"]

    # The same versions on both sides: the application is listed as the same, with no commits to compare.
    release = p.deployments["1.0.0"].release
    environment_update(actor=None, environment=p.right, requires_booking=False)  # deployable again
    policy_remove(actor=None, environment=p.right)
    again = wait_for(deployment_create(actor=p.user, release=release, environment=p.right, template=p.template))
    assert again.status == "succeeded", again.status_reason
    (row,) = client.get(compare_url(p)).json()["applications"]
    assert (row["status"], row["commits"], row["left"]["versions"], row["right"]["versions"]) == (
        "same",
        None,
        ["1.0.0"],
        ["1.0.0"],
    )


def test_a_plain_variable_holding_non_ascii_text_is_compared_not_a_server_error(db):
    team = make_team()
    user = make_user()
    team_add_member(actor=None, team=team, user=user)
    left, right = make_environment(team), make_environment(team)
    for environment, greeting in ((left, "Grüß Gott"), (right, "Grüß Gott")):
        variable_create(actor=None, environment=environment, name="GREETING", value=greeting)
    variable_create(actor=None, environment=left, name="CURRENCY", value="€")
    variable_create(actor=None, environment=right, name="CURRENCY", value="£")
    client = bearer_client(user, scopes=("read",))
    client.raise_request_exception = False
    response = client.get(f"/api/v1/environments/compare/?left={left.slug}&right={right.slug}")
    assert response.status_code == 200
    comparison = response.json()
    assert comparison["identical_variables"] == 1
    assert [(v["name"], v["left"]["value"], v["right"]["value"]) for v in comparison["variables"]] == [
        ("CURRENCY", "€", "£")
    ]
