"""URL map: portal pages, the REST API under /api/v1/, health endpoints, admin."""

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from editplatform.core import views as core_views

# An unmatched /api/ path answers JSON {detail, code}; other paths get the 404 page.
handler404 = "editplatform.core.api.not_found"

urlpatterns = [
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("", include("editplatform.monitoring.urls")),
    path("admin/", admin.site.urls),
    # Schema and docs are readable without credentials (SPECTACULAR_SETTINGS SERVE_PERMISSIONS).
    path("api/v1/schema", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI sets style attributes in its markup; scripts stay 'self'-only even here.
    path(
        "api/v1/docs",
        csp_update({"style-src": [UNSAFE_INLINE]})(
            SpectacularSwaggerSplitView.as_view(url_name="api-schema")
        ),
        name="api-docs",
    ),
    path("api/v1/", include("editplatform.jobs.api.urls")),
    path("api/v1/", include("editplatform.approvals.api_urls")),
    path("api/v1/audit/", include("audit.api_urls")),
    path("api/v1/retention/", include("editplatform.retention.api_urls")),
    path("jobs/", include("editplatform.jobs.urls")),
    path("approvals/", include("editplatform.approvals.urls")),
    path("models/", include("editplatform.models_registry.urls")),
    path("account/", include("editplatform.accounts.urls")),
    path("audit/jobs/", include("editplatform.compliance.urls")),
    path("audit/", include("audit.urls")),
    path("notifications/", include("editplatform.notifications.urls")),
    path("retention/", include("editplatform.retention.urls")),
    path("", include("editplatform.provenance.urls")),
    path("", include("editplatform.portal.urls")),
]
