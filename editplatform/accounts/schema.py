"""OpenAPI description of the `Api-Key` authentication scheme (drf-spectacular)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "editplatform.accounts.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                "`Api-Key <prefix>.<secret>` — keys are created by an administrator for an "
                "integration account, carry scopes (jobs:read, jobs:write, audit:read) and may be "
                "limited by IP and an hourly job quota."
            ),
        }
