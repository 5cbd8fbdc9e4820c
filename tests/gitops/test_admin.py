"""The admin shows environment repositories with their history, and changes none of them."""

from __future__ import annotations

from apps.gitops.services import repository_set
from tests.factories import make_environment, make_team, make_user


def test_the_admin_lists_repositories_and_their_history_read_only(client, db):
    environment = make_environment(make_team("ops"), "preview")
    repository = repository_set(
        actor=None, environment=environment, url="/srv/git/env.git", path="preview/app.yaml", manifest_template="x"
    )
    repository_set(actor=None, environment=environment, branch="live")
    client.force_login(make_user("root", is_staff=True, is_superuser=True))

    listing = client.get("/admin/gitops/environmentrepository/")
    assert listing.status_code == 200
    assert "/srv/git/env.git" in listing.content.decode()
    assert client.get(f"/admin/gitops/environmentrepository/{repository.pk}/history/").status_code == 200
    assert client.get("/admin/gitops/environmentrepository/add/").status_code == 403
    response = client.post(f"/admin/gitops/environmentrepository/{repository.pk}/change/", {"branch": "other"})
    assert response.status_code == 403
    response = client.post(f"/admin/gitops/environmentrepository/{repository.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    repository.refresh_from_db()
    assert repository.branch == "live"
    assert repository.history.count() == 2
