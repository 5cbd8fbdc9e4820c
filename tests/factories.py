"""Domain objects for tests, made through the services (actor=None: the system), so every object
arrives with the grants, history rows and audit events a real one has.

Plain functions rather than factory_boy factories: the services are the only writers
(DESIGN.md §3), and they take keyword arguments already.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field

from rest_framework.test import APIClient

from apps.accounts.models import ApiToken, Team, User
from apps.accounts.services import team_add_member, team_create, token_create
from apps.catalog.models import Application, Artifact
from apps.catalog.services import application_create, application_grant, artifact_register
from apps.environments.models import Environment, Lifecycle, Target, Variable
from apps.environments.services import (
    environment_create,
    environment_grant,
    lifecycle_create,
    target_create,
    variable_create,
)

_sequence = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_sequence)}"


def digest_of(text: str) -> str:
    """A well-formed artifact digest: sha256:<64 lowercase hex digits>."""
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def make_user(username: str | None = None, **fields) -> User:
    username = username or unique("user")
    user = User(username=username, email=f"{username}@example.com", **fields)
    user.set_password("pw")
    user.save()
    return user


def make_team(slug: str | None = None, *, members: tuple[User, ...] = ()) -> Team:
    slug = slug or unique("team")
    team = team_create(actor=None, name=slug.replace("-", " ").title(), slug=slug)
    for member in members:
        team_add_member(actor=None, team=team, user=member)
    return team


def make_environment(team: Team, slug: str | None = None, **fields) -> Environment:
    slug = slug or unique("env")
    fields.setdefault("name", slug.replace("-", " ").title())
    return environment_create(actor=None, slug=slug, owner_team=team, **fields)


def make_target(environment: Environment, name: str | None = None, **fields) -> Target:
    name = name or unique("host")
    fields.setdefault("address", f"{name}.example.internal")
    return target_create(actor=None, environment=environment, name=name, **fields)


def make_variable(environment: Environment, name: str | None = None, value: str = "v", **fields) -> Variable:
    name = name or unique("VAR").replace("-", "_")
    return variable_create(actor=None, environment=environment, name=name, value=value, **fields)


def make_lifecycle(environments_per_stage: list[list[Environment]], slug: str | None = None, **fields) -> Lifecycle:
    slug = slug or unique("lifecycle")
    stages = [
        {"name": f"stage {index}", "automatic": index == 1, "environments": environments}
        for index, environments in enumerate(environments_per_stage, start=1)
    ]
    fields.setdefault("name", slug.title())
    return lifecycle_create(actor=None, slug=slug, stages=stages, **fields)


def make_application(team: Team, slug: str | None = None, **fields) -> Application:
    slug = slug or unique("app")
    fields.setdefault("name", slug.replace("-", " ").title())
    return application_create(actor=None, slug=slug, owner_team=team, **fields)


def register(application: Application, version: str, *, by: User, token: ApiToken | None = None, **fields) -> Artifact:
    """Register a build as `by` (who needs `register` on the application, as CI would)."""
    fields.setdefault("digest", digest_of(f"{application.slug}@{version}"))
    fields.setdefault("uri", f"https://artifacts.example.com/{application.slug}/{version}.tar.gz")
    artifact, _ = artifact_register(actor=by, token=token, application=application.slug, version=version, **fields)
    return artifact


def bearer_client(user: User, scopes=("read",)) -> APIClient:
    _, raw = token_create(user=user, name=unique("token"), scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def session_client(user: User) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@dataclass
class World:
    """Two teams, each owning environments and applications, and one person in each.

    - payments (paula) owns payments-dev (a target, a variable, a secret) and the empty
      payments-spare; payments-api (one artifact) and the empty payments-lib.
    - storefront (steve) owns the same for storefront, and may *view* payments' objects.
      Payments may not see anything of storefront's.
    - stella is staff without permissions, root a superuser.
    - lifecycles `main` (both dev environments) and `spare`.
    """

    payments: Team
    storefront: Team
    paula: User
    steve: User
    stella: User
    root: User
    environments: dict[str, Environment] = field(default_factory=dict)
    targets: dict[str, Target] = field(default_factory=dict)
    variables: dict[str, Variable] = field(default_factory=dict)
    applications: dict[str, Application] = field(default_factory=dict)
    artifacts: dict[str, Artifact] = field(default_factory=dict)
    lifecycles: dict[str, Lifecycle] = field(default_factory=dict)


def build_world() -> World:
    paula, steve = make_user("paula"), make_user("steve")
    world = World(
        payments=make_team("payments", members=(paula,)),
        storefront=make_team("storefront", members=(steve,)),
        paula=paula,
        steve=steve,
        stella=make_user("stella", is_staff=True),
        root=make_user("root", is_staff=True, is_superuser=True),
    )
    for team, owner in ((world.payments, paula), (world.storefront, steve)):
        slug = team.slug
        dev = make_environment(team, f"{slug}-dev", tier="development", labels={"team": slug})
        world.environments[f"{slug}-dev"] = dev
        world.environments[f"{slug}-spare"] = make_environment(team, f"{slug}-spare", tier="test")
        world.targets[slug] = make_target(dev, "web-1")
        world.variables[slug] = make_variable(dev, "LOG_LEVEL", "info")
        world.variables[f"{slug}-secret"] = make_variable(dev, "DB_PASSWORD", f"{slug}-hunter2", secret=True)
        app = make_application(team, f"{slug}-app")
        world.applications[f"{slug}-app"] = app
        world.applications[f"{slug}-lib"] = make_application(team, f"{slug}-lib")
        world.artifacts[slug] = register(app, "1.0.0", by=owner, branch="main")
    for env in ("payments-dev", "payments-spare"):
        environment_grant(actor=None, environment=world.environments[env], team=world.storefront, action="view")
    for app in ("payments-app", "payments-lib"):
        application_grant(actor=None, application=world.applications[app], team=world.storefront, action="view")
    world.lifecycles["main"] = make_lifecycle(
        [[world.environments["payments-dev"], world.environments["storefront-dev"]]], slug="main"
    )
    world.lifecycles["spare"] = make_lifecycle([[world.environments["payments-dev"]]], slug="spare")
    return world


def make_release(
    application: Application, artifacts: list[Artifact], version: str = "", *, by: User | None = None, notes: str = ""
):
    """Create a release through the service, as `by` (who needs `register` on the application) or the system."""
    from apps.releases.services import release_create

    return release_create(actor=by, application=application, artifacts=artifacts, version=version, notes=notes)
