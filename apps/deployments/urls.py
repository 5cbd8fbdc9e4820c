from django.urls import path

from . import views

app_name = "deployments"
urlpatterns = [
    path("", views.deployment_list, name="list"),
    path("<int:pk>/", views.deployment_detail, name="detail"),
    path("<int:pk>/progress/", views.deployment_progress, name="progress"),
    path("<int:pk>/plan/", views.deployment_plan, name="plan"),
    path("<int:pk>/history/", views.deployment_history_tab, name="history"),
    path("<int:pk>/runs/<int:run_id>/log/", views.run_log, name="run-log"),
    path("<int:pk>/cancel/", views.deployment_cancel, name="cancel"),
    path("<int:pk>/resume/", views.deployment_resume, name="resume"),
    path("<int:pk>/retry/", views.deployment_retry, name="retry"),
    path("<int:pk>/rollback/", views.deployment_rollback, name="rollback"),
    path("<int:pk>/promote/", views.deployment_promote, name="promote"),
    path("<int:pk>/override-freeze/", views.deployment_override_freeze, name="override-freeze"),
    path("<int:pk>/override-policies/", views.deployment_override_policies, name="override-policies"),
    path("<int:pk>/overrides/<int:override>/confirm/", views.deployment_confirm_override, name="confirm-override"),
    path("<int:pk>/approve/", views.deployment_approve, name="approve"),
    path("<int:pk>/reject/", views.deployment_reject, name="reject"),
    path("templates/", views.template_list, name="template-list"),
    path("templates/new/", views.template_create, name="template-create"),
    path("templates/<slug:slug>/", views.template_detail, name="template-detail"),
    path("templates/<slug:slug>/edit/", views.template_edit, name="template-edit"),
]
