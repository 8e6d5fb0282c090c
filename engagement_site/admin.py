from django.contrib.admin import AdminSite


class SuperuserAdminSite(AdminSite):
    """Django's admin, for platform staff only: superusers, not tenant members with is_staff."""

    site_header = "engagement_site platform admin"
    site_title = "engagement_site admin"

    def has_permission(self, request):
        return request.user.is_active and request.user.is_superuser
