"""Template context: the current user's roles, for navigation."""

from editplatform.accounts.roles import roles_of


def roles(request):
    return {"user_roles": roles_of(getattr(request, "user", None))}
