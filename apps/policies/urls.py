from django.urls import path

from . import views

app_name = "policies"
urlpatterns = [
    path("environments/<slug:slug>/policies/", views.environment_policies, name="environment"),
    path("policies/", views.policy_set_list, name="list"),
    path("policies/new/", views.policy_set_create, name="create"),
    path("policies/<slug:slug>/", views.policy_set_detail, name="detail"),
    path("policies/<slug:slug>/edit/", views.policy_set_edit, name="edit"),
    path("policies/<slug:slug>/history/", views.policy_set_history_tab, name="history"),
    path("policies/<slug:slug>/delete/", views.policy_set_delete, name="delete"),
]
