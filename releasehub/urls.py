from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.core import views as core_views

api_v1 = [
    path("", include("apps.accounts.api.urls")),
    path("", include("apps.audit.api.urls")),
    path("", include("apps.inventory.api.urls")),  # before environments: environments/compare/
    path("", include("apps.environments.api.urls")),
    path("", include("apps.catalog.api.urls")),
    path("", include("apps.releases.api.urls")),
    path("", include("apps.deployments.api.urls")),
    path("", include("apps.approvals.api.urls")),
    path("", include("apps.notifications.api.urls")),
    path("", include("apps.scheduling.api.urls")),
    path("", include("apps.policies.api.urls")),
    path("", include("apps.configcode.api.urls")),
    path("", include("apps.gitops.api.urls")),
]

urlpatterns = [
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
    path("audit/", include("apps.audit.urls")),
    path("", include("apps.inventory.urls")),
    path("", include("apps.policies.urls")),
    path("", include("apps.gitops.urls")),
    path("environments/", include("apps.environments.urls")),
    path("applications/", include("apps.catalog.urls")),
    path("releases/", include("apps.releases.urls")),
    path("deployments/", include("apps.deployments.urls")),
    path("notifications/", include("apps.notifications.urls")),
    path("approvals/", include("apps.approvals.urls")),
    path("calendar/", include("apps.scheduling.urls")),
    path("", include("apps.accounts.urls")),
    path("", include("apps.core.urls")),
]

handler404 = "apps.core.views.page_not_found"
handler403 = "apps.core.views.permission_denied"
handler500 = "apps.core.views.server_error"

admin.site.site_header = "ReleaseHub administration"
admin.site.site_title = "ReleaseHub"
