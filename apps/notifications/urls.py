from django.urls import path

from . import views

app_name = "notifications"
urlpatterns = [
    path("", views.index, name="index"),
    path("subscriptions/<int:pk>/toggle/", views.subscription_toggle, name="subscription-toggle"),
    path("subscriptions/<int:pk>/delete/", views.subscription_delete, name="subscription-delete"),
    path("act/<str:token>/", views.act, name="act"),
]
