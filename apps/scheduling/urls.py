from django.urls import path

from . import views

app_name = "scheduling"
urlpatterns = [
    path("", views.calendar, name="calendar"),
    path("<slug:slug>.ics", views.ical_feed, name="feed"),
    path("feed-token/", views.feed_token, name="feed-token"),
    path("events.json", views.events, name="events"),
    path("bookings/new/", views.booking_create, name="booking-create"),
    path("bookings/<int:pk>/approve/", views.booking_approve, name="booking-approve"),
    path("bookings/<int:pk>/decline/", views.booking_decline, name="booking-decline"),
    path("bookings/<int:pk>/cancel/", views.booking_cancel, name="booking-cancel"),
    path("environments/<slug:slug>/lock/", views.environment_lock, name="environment-lock"),
    path("environments/<slug:slug>/unlock/", views.environment_unlock, name="environment-unlock"),
]
