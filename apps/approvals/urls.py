from django.urls import path

from . import views

app_name = "approvals"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("decided/", views.decided, name="decided"),
    path("pending/", views.pending, name="pending"),
]
