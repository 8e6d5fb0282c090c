"""django-csp's middleware, without the tracking API."""

from csp.middleware import CSPMiddleware as BaseCSPMiddleware


class CSPMiddleware(BaseCSPMiddleware):
    """Content-Security-Policy on every page, not on /v1/.

    django-csp builds the policy string for each response (~0.1 ms of CPU)
    before it looks at exemptions. The tracking API answers JSON to SDKs, not
    documents a browser renders, and takes 200 requests a second and more.
    """

    def process_response(self, request, response):
        if request.path_info.startswith("/v1/"):
            return response
        return super().process_response(request, response)
