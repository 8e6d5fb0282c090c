from django.contrib.admin.apps import AdminConfig


class PlatformAdminConfig(AdminConfig):
    default_site = "engagement_site.admin.SuperuserAdminSite"
