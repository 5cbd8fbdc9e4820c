"""The application's URLs plus the floor view (bench.floor.settings makes this the ROOT_URLCONF)."""

from django.urls import path

from releasehub import urls as app_urls

from .views import floor

urlpatterns = [path("bench/floor/", floor, name="bench-floor"), *app_urls.urlpatterns]

handler404 = app_urls.handler404
handler403 = app_urls.handler403
handler500 = app_urls.handler500
