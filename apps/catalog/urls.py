from django.urls import path, re_path

from . import views

app_name = "catalog"
urlpatterns = [
    path("", views.application_list, name="application-list"),
    path("new/", views.application_create, name="application-create"),
    path("<slug:slug>/", views.application_detail, name="application-detail"),
    path("<slug:slug>/edit/", views.application_edit, name="application-edit"),
    path("<slug:slug>/delete/", views.application_delete, name="application-delete"),
    path("<slug:slug>/history/", views.application_history_tab, name="application-history"),
    path("<slug:slug>/access/", views.application_access, name="application-access"),
    path("<slug:slug>/access/grant/", views.application_access_grant, name="application-access-grant"),
    path("<slug:slug>/access/revoke/", views.application_access_revoke, name="application-access-revoke"),
    # The version's own pattern (catalog.models.VERSION): anything else cannot exist, and never reaches the database.
    re_path(
        r"^(?P<slug>[-a-zA-Z0-9_]+)/artifacts/(?P<version>[0-9A-Za-z][0-9A-Za-z.+_-]{0,127})/$",
        views.artifact_detail,
        name="artifact-detail",
    ),
]
