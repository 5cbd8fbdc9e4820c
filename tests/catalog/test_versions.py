"""Version ordering: semantic versions by SemVer 2.0.0 precedence, anything else by registration time (below).

The key is compared with a straightforward implementation of semver.org §11 over every pair
of a corpus of awkward versions, then checked end to end through the API's ordering.
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from apps.catalog.models import Artifact
from apps.catalog.versions import SEMVER, version_sort_key
from tests.conftest import on_postgres
from tests.factories import bearer_client, make_application, make_team, make_user, register

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

CORPUS = [
    # semver.org §11's example, in order
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    # hyphens inside identifiers: "alpha" < "alpha-1", and '-' precedes digits and letters
    "1.0.0-alpha-1",
    "1.0.0-alpha.x",
    "1.0.0-alpha-",
    "1.0.0--",
    "1.0.0---1",
    "1.0.0-a-b.c",
    "1.0.0-a.b-c",
    # numeric identifiers below alphanumeric ones; ASCII order among alphanumerics (upper before lower)
    "1.0.0-0",
    "1.0.0-1",
    "1.0.0-2.0",
    "1.0.0-10",
    "1.0.0-1a",
    "1.0.0-0a",
    "1.0.0-A",
    "1.0.0-Z",
    "1.0.0-a",
    "1.0.0-a.b",
    "1.0.0-a.b.c",
    "1.0.0-a.1.1",
    # numbers compared by value, also beyond 12 digits
    "0.0.0",
    "0.0.1",
    "0.1.0",
    "1.0.10",
    "1.2.0",
    "1.10.0",
    "2.0.0",
    "10.0.0",
    "999999999999.0.0",
    "1000000000000.0.0",
    "9999999999999.0.0",
    "12345678901234567890.0.0",
    "1.999999999999999.0",
    "1.0.0-999999999999",
    "1.0.0-1000000000000",
    "1.0.0-12345678901234567890",
]


def precedence(version: str):
    """semver.org §11, written out: a release follows its pre-releases; identifiers compared one by one,
    numeric ones by value and below alphanumeric ones (ASCII order); a shorter list first."""
    match = SEMVER.match(version)
    core = tuple(int(match[part]) for part in ("major", "minor", "patch"))
    if match["pre"] is None:
        return (core, 1, ())
    identifiers = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in match["pre"].split("."))
    return (core, 0, identifiers)


def sign(a, b) -> int:
    return (a > b) - (a < b)


def test_the_corpus_is_semver():
    assert all(SEMVER.match(v) for v in CORPUS)


def test_key_order_is_semver_precedence_for_every_pair():
    wrong = [
        (a, b)
        for a, b in itertools.combinations(CORPUS, 2)
        if sign(version_sort_key(a, NOW), version_sort_key(b, NOW)) != sign(precedence(a), precedence(b))
    ]
    assert wrong == []


def test_semver_org_example_sorts_in_its_order():
    example = CORPUS[:8]
    shuffled = random.Random(4).sample(example, len(example))
    assert sorted(shuffled, key=lambda v: version_sort_key(v, NOW)) == example


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("1.0.0+build.1", "1.0.0"),  # build metadata does not count
        ("1.0.0+build.1", "1.0.0+build.2"),
        ("1.0.0-rc.1+exp.sha.5114f85", "1.0.0-rc.1"),
        ("v1.2.3", "1.2.3"),  # a git tag's "v"
    ],
)
def test_same_precedence_same_key(a, b):
    assert version_sort_key(a, NOW) == version_sort_key(b, NOW)


@pytest.mark.parametrize(
    "version",
    ["1.0", "1", "2026.11.20b", "01.2.3", "1.02.3", "1.2.3-01", "latest", "1.2.3.4", "build-77", "1.2.3-"],
)
def test_other_versions_are_not_semver(version):
    assert not SEMVER.match(version)


def test_other_versions_sort_by_registration_time_below_every_semantic_version():
    earlier, later = NOW, NOW + timedelta(microseconds=1)
    assert version_sort_key("zzz-build", earlier) < version_sort_key("aaa-build", later)
    assert version_sort_key("build-99", later) < version_sort_key("0.0.0-0", earlier)
    assert version_sort_key("2026.11", NOW + timedelta(days=3650)) < version_sort_key("0.0.1", NOW)


def test_longest_valid_version_has_a_key_that_fits():
    longest = "0.0.0-" + ".".join(["1"] * 61)  # 127 characters: numeric identifiers grow most in the key
    assert len(longest) <= 128
    key = version_sort_key(longest, NOW)
    assert len(key) <= Artifact._meta.get_field("version_key").max_length
    assert version_sort_key(longest + "0", NOW) > key


# --- through the database and the API ----------------------------------------------------------------


@pytest.fixture
def ci(db):
    bot = make_user("ci-bot")
    application = make_application(make_team("payments", members=(bot,)), "payments-api")
    return bot, application


def test_api_lists_newest_version_first(ci):
    bot, application = ci
    order = sorted(CORPUS, key=precedence)
    # Equal-precedence duplicates would make the expected order ambiguous: the corpus has none.
    assert len({precedence(v) for v in order}) == len(order)
    for version in random.Random(7).sample(CORPUS, len(CORPUS)):
        register(application, version, by=bot)
    client = bearer_client(bot)
    listed = [row["version"] for row in client.get("/api/v1/artifacts/", {"page_size": 100}).json()["results"]]
    assert listed == order[::-1]
    ascending = client.get("/api/v1/artifacts/", {"page_size": 100, "ordering": "version_key"}).json()["results"]
    assert [row["version"] for row in ascending] == order


def test_api_puts_other_versions_below_by_registration_time(ci):
    bot, application = ci
    for version in ("r2026-11-20-b", "1.0.0", "r2026-11-20-a", "0.1.0", "nightly"):
        register(application, version, by=bot)
    listed = [row["version"] for row in bearer_client(bot).get("/api/v1/artifacts/").json()["results"]]
    assert listed == ["1.0.0", "0.1.0", "nightly", "r2026-11-20-a", "r2026-11-20-b"]


def test_longest_valid_version_registers(ci):
    bot, _ = ci
    longest = "0.0.0-" + ".".join(["1"] * 61)
    response = bearer_client(bot, scopes=("artifacts:write",)).post(
        "/api/v1/artifacts/",
        {"application": "payments-api", "version": longest, "digest": "sha256:" + "a" * 64, "uri": "https://x/y"},
    )
    assert response.status_code == 201, response.json()


@pytest.mark.postgres
@pytest.mark.skipif(not on_postgres(), reason="collations of PostgreSQL")
def test_version_key_compares_bytes_whatever_the_database_collation(db):
    """The postgres Docker image creates databases with en_US.utf8, where '~' sorts before digits: the key
    column carries collation "C" of its own (this machine's databases use C.UTF-8, which hides the problem)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, collation_name FROM information_schema.columns "
            "WHERE column_name = 'version_key' AND table_schema = current_schema()"
        )
        collations = dict(cursor.fetchall())
    assert collations == {"catalog_artifact": "C", "catalog_historicalartifact": "C"}
