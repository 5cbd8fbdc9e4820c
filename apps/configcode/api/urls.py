from django.urls import path

from .views import ConfigExportView, ConfigImportView

urlpatterns = [
    path("config/export/", ConfigExportView.as_view(), name="config-export"),
    path("config/import/", ConfigImportView.as_view(), name="config-import"),
]
