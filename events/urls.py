from django.urls import re_path

from . import api

app_name = "events"

# One pattern with an optional trailing slash: no path ever redirects, because
# clients replay a redirected POST as a GET and lose the events.
urlpatterns = [
    re_path(
        r"^v1/(?P<kind>batch|import|b|track|t|identify|i|group|g|page|p|screen|s|alias|a)/?$",
        api.track_endpoint,
        name="track",
    ),
]
