from django.urls import path

from . import views

app_name = "core"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    *[path(f"{name}/", views.section, {"name": name}, name=name) for name in views.SECTIONS],
]
