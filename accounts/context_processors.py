from .selectors import tenants_for_user


def tenancy(request):
    """The current tenant and membership (set by `tenant_view`) and the switcher list."""
    user = getattr(request, "user", None)
    if not user or not user.is_authenticated:
        return {}
    return {
        "current_tenant": getattr(request, "tenant", None),
        "current_membership": getattr(request, "membership", None),
        # Lazy: only queried when a template renders the switcher, and once per request.
        "my_memberships": lambda: _memberships_once(request, user),
    }


def _memberships_once(request, user):
    memberships = getattr(request, "_my_memberships", None)
    if memberships is None:
        memberships = request._my_memberships = tenants_for_user(user)
    return memberships
