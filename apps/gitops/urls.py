from django.urls import path

from . import views

app_name = "gitops"
urlpatterns = [
    path("environments/<slug:slug>/gitops/", views.environment_gitops, name="environment"),
    path("environments/<slug:slug>/gitops/remove/", views.environment_gitops_remove, name="remove"),
]
