from django.urls import path

from . import views

app_name = "releases"
urlpatterns = [
    path("", views.release_list, name="list"),
    path("new/", views.release_create, name="create"),
    path("<int:pk>/", views.release_detail, name="detail"),
    path("<int:pk>/history/", views.release_history_tab, name="history"),
    path("<int:pk>/preview/", views.release_plan_preview, name="preview"),
    path("<int:pk>/deploy/", views.release_deploy, name="deploy"),
    path("<int:pk>/promote/", views.release_promote, name="promote"),
    path("<int:pk>/unblock/", views.release_unblock, name="unblock"),
    path("<int:pk>/edit/", views.release_edit, name="edit"),
    path("<int:pk>/delete/", views.release_delete, name="delete"),
]
