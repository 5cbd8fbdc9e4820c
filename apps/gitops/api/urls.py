from django.urls import path

from .views import RepositoryView, WebhookView

urlpatterns = [
    path("environments/<slug:environment_slug>/repository/", RepositoryView.as_view(), name="environment-repository"),
    path("gitops/webhooks/<slug:provider>/", WebhookView.as_view(), name="gitops-webhook"),
]
