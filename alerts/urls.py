app_name = "alerts"

# Routes outside a workspace (e.g. a signed unsubscribe link).
urlpatterns = []

# Pages of a workspace, mounted under /t/<slug>/ by engagement_site/urls.py.
tenant_urlpatterns = []
