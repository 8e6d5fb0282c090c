from functools import update_wrapper

from django.contrib.admin import AdminSite

from accounts import rls
from accounts.models import dangerously_unscoped


class SuperuserAdminSite(AdminSite):
    """Django's admin, for platform staff only: superusers, not tenant members with is_staff."""

    site_header = "engagement_site platform admin"
    site_title = "engagement_site admin"

    def has_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def admin_view(self, view, cacheable=False):
        """Every admin page of a superuser runs as the owner role: platform staff see every tenant.

        Its queries of tenant-owned rows run unscoped too (`dangerously_unscoped`):
        Django's admin reads them through `_default_manager` in many places
        (changelists, raw-id widgets, inlines, delete pages, autocomplete).

        Django's wrapper checks `has_permission` before calling the view, so only
        a superuser reaches the bypass; the response is rendered inside it.
        """

        def platform_view(request, *args, **kwargs):
            with rls.bypass("platform admin site"), dangerously_unscoped("platform admin site"):
                response = view(request, *args, **kwargs)
                if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                    response.render()
            return response

        return super().admin_view(update_wrapper(platform_view, view), cacheable)
