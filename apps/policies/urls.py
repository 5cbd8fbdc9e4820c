from django.urls import path

from . import views

app_name = "policies"
urlpatterns = [
    path("environments/<slug:slug>/policies/", views.environment_policies, name="environment"),
]
