"""Approval pages: the panel on the deployment page (decide with htmx), the inbox and its tabs, the dashboard card,
the navigation badge, and the policy on the environment's Approvals tab, for approvers, requesters and outsiders.

The scene (tests.approvals.test_approvals._scene): staging needs 2 approvals from the release managers
(approver-0, -1, -2); dora requests deployments, rita created the release; both are developers, who own
(manage) staging.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.services import team_add_member
from apps.approvals.models import ApprovalPolicy, Decision
from apps.approvals.services import approve, policy_set
from apps.audit.models import AuditEvent
from apps.catalog.services import application_grant
from apps.deployments.services import deployment_cancel, deployment_create
from apps.environments.services import environment_grant
from apps.inventory.services import record_installation
from apps.releases.services import release_create
from tests.approvals.test_approvals import _scene, request_deploy
from tests.factories import make_target, make_team, make_user, register

HTMX = {"HTTP_HX_REQUEST": "true"}


def html(response) -> str:
    return response.content.decode()


def queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured)


def rows(page: str) -> list[int]:
    """The deployments listed in the inbox's table, in order."""
    table = page.split('data-testid="approval-table"')[1].split("</table>")[0]
    return [int(pk) for pk in re.findall(r'data-testid="approval-row" data-deployment="(\d+)"', table)]


@pytest.fixture
def scene(db):
    return _scene()


@pytest.fixture
def waiting(scene):
    """A deployment of shop 1.0.0 to staging (web-1 runs 0.9.0, web-2 nothing yet), waiting for 2 approvals."""
    make_target(scene["staging"], "web-2")
    application = scene["release"].application
    older = register(application, "0.9.0", by=scene["rita"])
    earlier = deployment_create(
        actor=scene["dora"],
        release=release_create(actor=scene["rita"], application=application, artifacts=[older]),
        environment=scene["staging"],
        template=scene["template"],
    )
    deployment_cancel(actor=scene["dora"], deployment=earlier)
    web_1 = scene["staging"].targets.get(name="web-1")
    record_installation(deployment=earlier, target_id=web_1.pk, artifact_id=older.pk)
    return request_deploy(scene)


def outsider():
    """Someone with no permission on staging or shop."""
    person = make_user("otto")
    make_team(members=(person,))
    return person


# --- The panel on the deployment page ----------------------------------------------------------------


def test_the_panel_shows_the_request_decisions_what_changes_and_the_buttons(client, scene, waiting):
    amy, ben, _ = scene["people"]
    approve(actor=amy, deployment=waiting, comment="Checked the <b>migration</b>.")
    client.force_login(ben)
    page = html(client.get(f"/deployments/{waiting.pk}/"))
    panel = page.split('data-testid="approval-panel"')[1].split("</section>")[0]
    assert "1 of 2 approvals" in panel
    assert 'data-request-status="pending"' in panel
    assert "1 more approval needed" in panel
    assert "never expires" in panel
    assert scene["managers"].name in panel  # who may approve
    assert waiting.plan_digest[:12] in panel
    assert f'title="sha256 {waiting.plan_digest}"' in panel
    assert f'href="/deployments/{waiting.pk}/plan/"' in panel
    # The decision: who, verdict, comment (escaped).
    assert panel.count('data-testid="decision"') == 1
    assert "approver-0" in panel
    assert 'data-verdict="approve"' in panel
    assert "Checked the &lt;b&gt;migration&lt;/b&gt;." in panel
    # What changes: web-1 goes from 0.9.0 to 1.0.0, web-2 gets its first install.
    changes = re.findall(r'data-testid="approval-change">(.*?)</tr>', panel, re.S)
    assert len(changes) == 2
    assert re.search(r"web-1.*0\.9\.0.*1\.0\.0", changes[0], re.S)
    assert re.search(r"web-2.*nothing.*1\.0\.0", changes[1], re.S)
    # Ben may decide: the form posts with htmx, bound to the digest shown.
    assert 'data-testid="approval-form"' in panel
    assert f'hx-post="/deployments/{waiting.pk}/approve/"' in panel
    assert f'hx-post="/deployments/{waiting.pk}/reject/"' in panel
    assert f'name="plan_digest" value="{waiting.plan_digest}"' in panel
    assert 'hx-target="#deployment-live"' in panel
    # The panel is inside the part of the page that polls itself.
    live = page.split('<div id="deployment-live"')[1]
    assert 'hx-trigger="every 2s"' in live.split(">")[0]
    assert 'data-testid="approval-panel"' in live
    # While typing, a poll keeps the comment (hx-preserve); so does the fragment the poll fetches.
    assert re.search(r'id="approval-comment"[^>]*hx-preserve="true"', page)
    fragment = html(client.get(f"/deployments/{waiting.pk}/progress/", **HTMX))
    assert fragment.strip().startswith('<div id="deployment-live"')
    assert "1 of 2 approvals" in fragment
    assert re.search(r'id="approval-comment"[^>]*hx-preserve="true"', fragment)


def test_the_approver_who_decided_sees_their_decision_instead_of_the_buttons(client, scene, waiting):
    amy = scene["people"][0]
    approve(actor=amy, deployment=waiting, comment="ok")
    client.force_login(amy)
    page = html(client.get(f"/deployments/{waiting.pk}/"))
    assert 'data-testid="approval-form"' not in page
    assert 'data-testid="your-decision"' in page
    assert "You approved this deployment" in page
    assert "it waits for 1 more" in page


def test_approve_through_the_page_with_htmx_until_the_deployment_goes_on(client, scene, waiting):
    amy, ben, _ = scene["people"]
    client.force_login(amy)
    response = client.post(
        f"/deployments/{waiting.pk}/approve/",
        {"comment": "Release notes read.", "plan_digest": waiting.plan_digest},
        **HTMX,
    )
    assert response.status_code == 200
    fragment = html(response)
    assert fragment.strip().startswith('<div id="deployment-live"')  # the live part, swapped in place
    assert "<html" not in fragment
    assert "1 of 2 approvals" in fragment
    assert "You approved this deployment" in fragment
    assert 'data-testid="approval-form"' not in fragment
    decision = Decision.objects.get(request__deployment=waiting)
    assert (decision.user, decision.verdict, decision.comment) == (amy, "approve", "Release notes read.")
    assert decision.plan_digest == waiting.plan_digest

    client.force_login(ben)
    fragment = html(
        client.post(f"/deployments/{waiting.pk}/approve/", {"comment": "", "plan_digest": waiting.plan_digest}, **HTMX)
    )
    waiting.refresh_from_db()
    assert waiting.status == "running"  # approved, queued and started: staging was free
    assert 'data-status="running"' in fragment
    assert "2 of 2 approvals" in fragment
    assert 'data-request-status="approved"' in fragment
    assert AuditEvent.objects.filter(verb="approval.approved", object_id=str(waiting.pk)).count() == 2


def test_reject_without_a_comment_shows_the_services_error_then_rejects(client, scene, waiting):
    ben = scene["people"][1]
    client.force_login(ben)
    url = f"/deployments/{waiting.pk}/reject/"
    fragment = html(client.post(url, {"comment": "  ", "plan_digest": waiting.plan_digest}, **HTMX))
    assert "A rejection needs a comment." in fragment
    assert re.search(r'class="form-control form-control-sm is-invalid" id="approval-comment"', fragment)
    # The answer shows the server's verdict: no hx-preserve on the comment or the error this time.
    assert not re.search(r'id="approval-comment"[^>]*hx-preserve', fragment)
    assert not re.search(r'id="approval-feedback"[^>]*hx-preserve', fragment)
    assert not Decision.objects.exists()

    fragment = html(client.post(url, {"comment": "Not during the sale.", "plan_digest": waiting.plan_digest}, **HTMX))
    waiting.refresh_from_db()
    assert waiting.status == "rejected"
    assert 'data-request-status="rejected"' in fragment
    assert 'data-verdict="reject"' in fragment
    assert "Not during the sale." in fragment
    assert 'data-testid="approval-form"' not in fragment


def test_a_decision_on_a_plan_that_is_not_the_deployments_is_refused(client, scene, waiting):
    client.force_login(scene["people"][0])
    fragment = html(
        client.post(f"/deployments/{waiting.pk}/approve/", {"comment": "ok", "plan_digest": "0" * 64}, **HTMX)
    )
    assert "The plan you saw is not this deployment&#x27;s plan; reload it and decide again." in fragment
    assert 'data-testid="approval-form"' in fragment  # still there, to decide again
    assert not Decision.objects.exists()


def test_unreadable_input_is_refused_without_deciding(client, scene, waiting):
    client.force_login(scene["people"][0])
    url = f"/deployments/{waiting.pk}/approve/"
    fragment = html(client.post(url, {"comment": "ok\x00", "plan_digest": waiting.plan_digest}, **HTMX))
    assert "Null characters are not allowed." in fragment
    fragment = html(client.post(url, {"comment": "ok", "plan_digest": "\x00"}, **HTMX))
    assert "The decision could not be read." in fragment
    assert not Decision.objects.exists()


def test_the_requester_and_the_release_creator_see_why_they_may_not_decide(client, scene, waiting):
    client.force_login(scene["dora"])
    assert "You may not approve deployments to Staging." in html(client.get(f"/deployments/{waiting.pk}/"))
    # Even holding approve, in an eligible team, they may not approve what they asked for or made.
    environment_grant(actor=None, environment=scene["staging"], team=scene["devs"], action="approve")
    for person in (scene["dora"], scene["rita"]):
        team_add_member(actor=None, team=scene["managers"], user=person)
    for person, reason in (
        (scene["dora"], "You requested this deployment: someone else must approve it."),
        (scene["rita"], "You created this release: someone else must approve its deployment."),
    ):
        client.force_login(person)
        page = html(client.get(f"/deployments/{waiting.pk}/"))
        assert 'data-testid="approval-panel"' in page
        assert 'data-testid="approval-form"' not in page
        why = page.split('data-testid="approval-reason">')[1].split("</p>")[0]
        assert why.endswith(reason)
        fragment = html(
            client.post(f"/deployments/{waiting.pk}/approve/", {"plan_digest": waiting.plan_digest}, **HTMX)
        )
        assert reason in fragment
    assert not Decision.objects.exists()


def test_without_htmx_a_decision_lands_back_on_the_page_with_a_message(client, scene, waiting):
    client.force_login(scene["people"][0])
    response = client.post(f"/deployments/{waiting.pk}/approve/", {"plan_digest": waiting.plan_digest}, follow=True)
    assert response.redirect_chain == [(f"/deployments/{waiting.pk}/", 302)]
    assert f"You approved {waiting}." in html(response)
    response = client.post(f"/deployments/{waiting.pk}/reject/", {"comment": "No."}, follow=True)
    assert "You have decided on this deployment already" in html(response)


def test_an_invisible_deployment_is_a_404_and_a_get_is_refused(client, scene, waiting):
    client.force_login(outsider())
    for action in ("approve", "reject"):
        assert client.post(f"/deployments/{waiting.pk}/{action}/", {"comment": "x"}, **HTMX).status_code == 404
    client.force_login(scene["people"][0])
    assert client.get(f"/deployments/{waiting.pk}/approve/").status_code == 405
    assert not Decision.objects.exists()


def test_a_deployment_without_approval_has_no_panel(client, scene):
    ApprovalPolicy.objects.all().delete()
    deployment = request_deploy(scene)
    client.force_login(scene["dora"])
    assert 'data-testid="approval-panel"' not in html(client.get(f"/deployments/{deployment.pk}/"))


def test_the_deployment_page_runs_constant_queries_as_decisions_grow(client, db, django_assert_max_num_queries):
    scene = _scene(required=10, approvers=8)
    few, many = request_deploy(scene), request_deploy(scene)
    approve(actor=scene["people"][0], deployment=few, comment="one")
    for person in scene["people"][:7]:
        approve(actor=person, deployment=many, comment=f"{person.username} agrees")
    # The last approver may decide on both: the page shows the buttons and every decision.
    client.force_login(scene["people"][7])
    for suffix in ("", "progress/"):
        baseline = queries(client, f"/deployments/{few.pk}/{suffix}")
        with django_assert_max_num_queries(baseline):
            page = html(client.get(f"/deployments/{many.pk}/{suffix}"))
        assert page.count('data-testid="decision"') == 7
        assert 'data-testid="approval-form"' in page


# --- The inbox ---------------------------------------------------------------------------------------


def test_the_inbox_tabs_for_an_approver_the_requester_and_an_outsider(client, scene, waiting):
    amy, ben, _ = scene["people"]
    client.force_login(amy)
    page = html(client.get("/approvals/"))
    assert rows(page) == [waiting.pk]
    row = page.split('data-testid="approval-row"')[1].split("</tr>")[0]
    assert f'href="/deployments/{waiting.pk}/"' in row
    assert re.search(r"Shop.*1\.0\.0.*Staging", row, re.S)
    assert "dora" in row  # requested by
    assert "0/2" in row
    assert "never" in row  # expires
    assert 'data-testid="tab-count-waiting">1<' in page
    assert 'aria-current="page" href="/approvals/"' in page  # the navigation marks the section
    assert 'data-testid="approvals-badge">1<' in page
    assert rows(html(client.get("/approvals/decided/"))) == []
    pending = html(client.get("/approvals/pending/"))
    assert rows(pending) == [waiting.pk]
    assert 'data-testid="yours"' in pending

    approve(actor=amy, deployment=waiting, comment="Fine by me.")
    assert rows(html(client.get("/approvals/"))) == []
    decided = html(client.get("/approvals/decided/"))
    assert rows(decided) == [waiting.pk]
    assert 'data-verdict="approve"' in decided
    assert "Fine by me." in decided
    assert "1/2 approved" in decided
    assert 'data-testid="approvals-badge"' not in decided
    client.force_login(ben)
    assert rows(html(client.get("/approvals/"))) == [waiting.pk]
    assert "1/2" in html(client.get("/approvals/"))

    # The requester sees it pending, not waiting for her.
    client.force_login(scene["dora"])
    assert rows(html(client.get("/approvals/"))) == []
    pending = html(client.get("/approvals/pending/"))
    assert rows(pending) == [waiting.pk]
    assert 'data-testid="yours"' not in pending
    assert "Nothing waits for your approval." in html(client.get("/approvals/"))

    # An outsider sees nothing at all.
    client.force_login(outsider())
    for path in ("/approvals/", "/approvals/decided/", "/approvals/pending/"):
        page = html(client.get(path))
        assert rows(page) == [], path
        assert 'data-testid="empty-state"' in page


def test_who_holds_approve_but_is_not_in_an_eligible_team_is_not_waited_for(client, scene, waiting):
    person = make_user("olga")
    other = make_team(members=(person,))
    environment_grant(actor=None, environment=scene["staging"], team=other, action="approve")
    application_grant(actor=None, application=scene["release"].application, team=other, action="view")
    client.force_login(person)
    assert rows(html(client.get("/approvals/"))) == []
    assert rows(html(client.get("/approvals/pending/"))) == [waiting.pk]
    # Once the policy names no team, anyone holding approve counts (requests opened from then on).
    deployment_cancel(actor=scene["dora"], deployment=waiting)
    policy_set(actor=None, environment=scene["staging"], required_approvals=1)
    second = request_deploy(scene)
    assert rows(html(client.get("/approvals/"))) == [second.pk]


def test_the_inbox_lists_the_request_expiring_first_first(client, db):
    scene = _scene(expires_after=timedelta(hours=2))
    later = request_deploy(scene)
    sooner = request_deploy(scene)
    sooner.approval_request.expires_at -= timedelta(hours=1)
    sooner.approval_request.save()
    client.force_login(scene["people"][0])
    page = html(client.get("/approvals/"))
    assert rows(page) == [sooner.pk, later.pk]
    assert re.search(r"in (59|58)\xa0minutes</time>", page)  # timeuntil keeps the number and unit together


def test_the_inbox_runs_constant_queries_whatever_the_rows(client, db, django_assert_max_num_queries):
    scene = _scene(required=3)
    amy = scene["people"][0]
    client.force_login(amy)

    def tabs() -> list[int]:
        return [queries(client, path) for path in ("/approvals/", "/approvals/decided/", "/approvals/pending/")]

    first = request_deploy(scene)
    approve(actor=amy, deployment=first)
    request_deploy(scene)
    baseline = tabs()
    for _ in range(6):
        deployment = request_deploy(scene)
        approve(actor=amy, deployment=deployment, comment="ok")
        request_deploy(scene)
    for path, count in zip(("/approvals/", "/approvals/decided/", "/approvals/pending/"), baseline, strict=True):
        with django_assert_max_num_queries(count):
            page = html(client.get(path))
        assert len(rows(page)) == {"/approvals/": 7, "/approvals/decided/": 7, "/approvals/pending/": 14}[path]


def test_the_inbox_needs_a_sign_in(client, db):
    assert client.get("/approvals/").status_code == 302


# --- Dashboard -----------------------------------------------------------------------------------------


def test_the_dashboard_lists_what_waits_for_the_user(client, scene, waiting):
    client.force_login(scene["people"][0])
    page = html(client.get("/"))
    card = page.split('data-testid="waiting-card"')[1].split("</section>")[0]
    assert card.count('data-testid="waiting-row"') == 1
    assert f'href="/deployments/{waiting.pk}/#approval"' in card
    assert 'href="/approvals/"' in card
    client.force_login(scene["dora"])
    card = html(client.get("/")).split('data-testid="waiting-card"')[1].split("</section>")[0]
    assert 'data-testid="waiting-empty"' in card


def test_the_dashboard_shows_five_and_counts_the_rest(client, db):
    scene = _scene()
    for _ in range(7):
        request_deploy(scene)
    client.force_login(scene["people"][0])
    card = html(client.get("/")).split('data-testid="waiting-card"')[1].split("</section>")[0]
    assert card.count('data-testid="waiting-row"') == 5
    assert "all 7" in card


# --- The policy on the environment page ------------------------------------------------------------


def test_the_approvals_tab_shows_the_policy_and_the_form_to_managers_only(client, scene, waiting):
    client.force_login(scene["dora"])  # a developer: the team owns staging, so she manages it
    page = html(client.get("/environments/staging/approvals/"))
    assert 'aria-current="page" href="/environments/staging/approvals/"' in page
    assert "2 different people approve" in page
    assert scene["managers"].name in page.split('data-testid="policy-teams"')[1].split("</dd>")[0]
    assert "Requests wait until someone decides." in page
    assert "One rejection rejects the deployment." in page
    assert 'data-testid="policy-form"' in page
    assert 'data-testid="policy-remove"' in page
    assert f'href="/deployments/{waiting.pk}/#approval"' in page  # waiting here
    overview = html(client.get("/environments/staging/"))
    assert "need 2 approvals from" in overview

    client.force_login(scene["people"][0])  # approves, may not manage
    page = html(client.get("/environments/staging/approvals/"))
    assert "2 different people approve" in page
    assert 'data-testid="policy-form"' not in page
    assert 'data-testid="policy-remove"' not in page
    client.force_login(outsider())
    assert client.get("/environments/staging/approvals/").status_code == 404


def test_a_manager_sets_replaces_and_removes_the_policy(client, scene):
    client.force_login(scene["dora"])
    url = "/environments/staging/approvals/set/"
    response = client.post(
        url,
        {
            "required_approvals": "3",
            "eligible_teams": [scene["managers"].slug, scene["devs"].slug],
            "expires_after": "24",
        },
        follow=True,
    )
    assert response.redirect_chain == [("/environments/staging/approvals/", 302)]
    assert "Policy replaced" in html(response)
    policy = ApprovalPolicy.objects.get(environment=scene["staging"])
    assert policy.required_approvals == 3
    assert set(policy.eligible_teams.all()) == {scene["managers"], scene["devs"]}
    assert policy.expires_after == timedelta(hours=24)
    assert policy.rejection_rejects is False  # the box was not ticked
    page = html(response)
    assert "3 different people approve" in page
    assert "expires after 1 day" in page
    assert "Is recorded; the deployment still goes on" in page
    assert re.search(r'name="expires_after" value="24"', page)  # the form shows the policy
    assert AuditEvent.objects.filter(verb="approval_policy.set").count() == 2

    # Bad input: the form's and the service's errors, nothing changed.
    page = html(client.post(url, {"required_approvals": "0"}))
    assert "Ensure this value is greater than or equal to 1." in page
    page = html(client.post(url, {"required_approvals": "1", "expires_after": "0.01"}))
    assert "From one minute to 30 days, or none." in page
    page = html(client.post(url, {"required_approvals": "1", "eligible_teams": ["no-such-team"]}))
    assert "Select a valid choice." in page
    assert ApprovalPolicy.objects.get(environment=scene["staging"]).required_approvals == 3

    response = client.post("/environments/staging/approvals/remove/", follow=True)
    assert "need no approval any more" in html(response)
    assert 'data-testid="no-policy"' in html(response)
    assert not ApprovalPolicy.objects.filter(environment=scene["staging"]).exists()
    assert request_deploy(scene).status == "running"
    response = client.post("/environments/staging/approvals/remove/", follow=True)
    assert "Staging has no approval policy." in html(response)

    response = client.post(url, {"required_approvals": "1", "rejection_rejects": "on"}, follow=True)
    assert "Policy set" in html(response)
    assert ApprovalPolicy.objects.get(environment=scene["staging"]).rejection_rejects is True


def test_the_policy_is_refused_without_manage(client, scene):
    amy = scene["people"][0]
    client.force_login(amy)
    response = client.post("/environments/staging/approvals/set/", {"required_approvals": "1"}, follow=True)
    assert "You may not manage environment" in html(response)
    assert ApprovalPolicy.objects.get(environment=scene["staging"]).required_approvals == 2
    response = client.post("/environments/staging/approvals/remove/", follow=True)
    assert "You may not manage environment" in html(response)
    assert ApprovalPolicy.objects.filter(environment=scene["staging"]).exists()
    client.force_login(outsider())
    assert client.post("/environments/staging/approvals/set/", {"required_approvals": "1"}).status_code == 404
    assert client.post("/environments/staging/approvals/remove/").status_code == 404


def test_an_eligible_member_added_later_is_waited_for(client, scene, waiting):
    """Membership is read when the page is drawn: joining the eligible team puts the request in the inbox."""
    person = make_user("nils")
    team = make_team(members=(person,))
    environment_grant(actor=None, environment=scene["staging"], team=team, action="approve")
    application_grant(actor=None, application=scene["release"].application, team=team, action="view")
    client.force_login(person)
    assert rows(html(client.get("/approvals/"))) == []
    team_add_member(actor=None, team=scene["managers"], user=person)
    assert rows(html(client.get("/approvals/"))) == [waiting.pk]
