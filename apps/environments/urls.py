from django.urls import path

from . import views

app_name = "environments"
urlpatterns = [
    path("", views.environment_list, name="list"),
    path("new/", views.environment_create, name="create"),
    path("<slug:slug>/", views.environment_detail, name="detail"),
    path("<slug:slug>/edit/", views.environment_edit, name="edit"),
    path("<slug:slug>/delete/", views.environment_delete, name="delete"),
    path("<slug:slug>/approvals/", views.environment_approvals, name="approvals"),
    path("<slug:slug>/approvals/set/", views.environment_approvals_set, name="approvals-set"),
    path("<slug:slug>/approvals/remove/", views.environment_approvals_remove, name="approvals-remove"),
    path("<slug:slug>/history/", views.environment_history_tab, name="history"),
    path("<slug:slug>/access/", views.environment_access, name="access"),
    path("<slug:slug>/access/grant/", views.environment_access_grant, name="access-grant"),
    path("<slug:slug>/access/revoke/", views.environment_access_revoke, name="access-revoke"),
    path("<slug:slug>/targets/new/", views.target_form, name="target-create"),
    path("<slug:slug>/targets/<int:pk>/edit/", views.target_form, name="target-edit"),
    path("<slug:slug>/targets/<int:pk>/delete/", views.target_delete, name="target-delete"),
    path("<slug:slug>/variables/new/", views.variable_create, name="variable-create"),
    path("<slug:slug>/variables/<int:pk>/edit/", views.variable_edit, name="variable-edit"),
    path("<slug:slug>/variables/<int:pk>/delete/", views.variable_delete, name="variable-delete"),
]
