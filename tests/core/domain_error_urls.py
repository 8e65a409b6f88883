"""A URLconf for tests/core/test_domain_error_page.py: the project's URLs plus one portal
view that raises a DomainError (as an audited portal action does when the log refuses
appends after a restore)."""

from django.urls import path

from editplatform.core.errors import DomainError
from editplatform.urls import urlpatterns as project_urlpatterns


def refusing_view(request):
    raise DomainError("the audit log was rolled back; appends are refused until an operator "
                      "acknowledges it", "audit_log_rolled_back", status=503)


urlpatterns = [*project_urlpatterns, path("test-only/refuse/", refusing_view)]
