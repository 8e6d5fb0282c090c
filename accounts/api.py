"""The read API's base: read-key authentication, tenant scoping and one error shape.

Every read API view subclasses `TenantAPIView`. The tenant comes from the key,
never from the URL or payload; subclasses may not replace the authentication,
permission or scoping hooks (checked when the class is defined), and read rows
through `self.scoped(Model)`.
"""

import base64
import binascii

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from core.api_errors import ERROR_COMPONENT
from core.api_errors import error_body as _error_body
from core.ratelimit import RateLimit

from . import rls
from .models import ApiKeyKind
from .services import api_key_authenticate

# --- Errors ---------------------------------------------------------------------


def error_body(code: str, message: str, field: str | None = None) -> dict:
    return _error_body(code, message, field)


def _first_field_error(detail) -> tuple[str | None, str]:
    if isinstance(detail, dict):
        for field, value in detail.items():
            sub_field, message = _first_field_error(value)
            name = field if field != "non_field_errors" else None
            return (f"{name}.{sub_field}" if name and sub_field else name or sub_field), message
    if isinstance(detail, list) and detail:
        return _first_field_error(detail[0])
    return None, str(detail)


def exception_handler(exc, context):
    """One error shape for both APIs (core.api_errors): {"code", "message", "field"}."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        field, message = _first_field_error(exc.detail)
        response.data = error_body("invalid", message, field)
    elif isinstance(exc, exceptions.Throttled):
        response.data = error_body("rate_limited", "Too many requests for this read key; retry after Retry-After.")
    else:
        code = getattr(exc, "default_code", "error")
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        response.data = error_body(code, str(detail), getattr(exc, "field", None))
    return response


@csrf_exempt
def not_found(request, path: str = ""):
    """Any path under /api/v1/ that names no endpoint: the one error shape, in JSON."""
    return JsonResponse(error_body("not_found", "No such endpoint."), status=404)


class QueryParams(serializers.Serializer):
    """A read API view's query string. A parameter sent empty (`?tier=`) is a 400 naming it.

    DRF treats an empty value in form-like input (a QueryDict) as "not given"
    for optional fields, so `?tier=` silently meant "any tier".
    """

    def to_internal_value(self, data):
        for name in self.fields:
            if name in data and data.get(name) == "":
                raise exceptions.ValidationError({name: [f"{name} may not be empty; leave it out instead."]})
        return super().to_internal_value(data)


ApiErrorSerializer = inline_serializer(
    ERROR_COMPONENT,
    {
        "code": serializers.CharField(),
        "message": serializers.CharField(),
        "field": serializers.CharField(allow_null=True),
    },
)
_ERROR_DESCRIPTIONS = {
    400: "A bad query parameter; `field` names it.",
    401: "No read key, or an unknown or revoked one.",
    403: "A write key: it can only send events.",
    404: "Not found (an unknown id, another workspace's id, an unscored day, a cursor of no page).",
    429: "Too many requests for this read key; retry after Retry-After seconds.",
}


def error_responses(*statuses: int) -> dict:
    """OpenAPI responses in the one error shape: 400, 401, 403, 404 and 429 on every operation.

    Every read operation can answer each of them (a bad or stale cursor is a 400, an
    unknown path a 404), and a generated client handles only the statuses the schema
    names: anything else raises (openapi-python-client's UnexpectedStatus).
    """
    return {
        # 429's Retry-After header is added to every operation by events.openapi's hook.
        status: OpenApiResponse(ApiErrorSerializer, description=_ERROR_DESCRIPTIONS[status])
        for status in sorted({400, 401, 403, 404, 429, *statuses})
    }


# --- Authentication ---------------------------------------------------------------


def key_from_request(request) -> str | None:
    """The key from `Authorization: Bearer <key>` or Basic with the key as user name.

    Keys in the query string are refused on purpose: URLs end up in logs.
    """
    header = get_authorization_header(request).decode("latin-1")
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            return base64.b64decode(value, validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return None
    return None


class ReadKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        if "key" in request.query_params or "api_key" in request.query_params:
            raise exceptions.AuthenticationFailed("Send the key in the Authorization header, never in the URL.")
        plaintext = key_from_request(request)
        if plaintext is None:
            return None
        key = api_key_authenticate(plaintext, ApiKeyKind.READ)
        if key is None:
            if api_key_authenticate(plaintext, ApiKeyKind.WRITE) is not None:
                raise exceptions.PermissionDenied("A write key can only send events; use a read key here.")
            raise exceptions.AuthenticationFailed("Unknown or revoked read key.")
        return (None, key)

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class ReadKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = ReadKeyAuthentication
    name = "readKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A read key (rk_…) from Settings → API keys."}


class HasReadKey(BasePermission):
    def has_permission(self, request, view):
        if request.auth is None:
            raise exceptions.NotAuthenticated("A read key is required: Authorization: Bearer rk_…")
        return True


# Requests per minute per read key (settings.READ_API_RATE_LIMIT_PER_MINUTE; 0 = unlimited).
READ_LIMIT = RateLimit("read-api", window=60)


class TenantAPIView(APIView):
    authentication_classes = [ReadKeyAuthentication]
    permission_classes = [HasReadKey]

    _PROTECTED = (
        "authentication_classes",
        "permission_classes",
        "get_authenticators",
        "get_permissions",
        "check_permissions",
        "initial",
        "perform_authentication",
        "dispatch",
    )

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Compare resolved attributes, not cls.__dict__: a mixin placed before this
        # class, or an empty list, must not slip past the check either.
        replaced = [name for name in cls._PROTECTED if getattr(cls, name) is not getattr(TenantAPIView, name)]
        if replaced:
            raise TypeError(f"{cls.__name__} may not override tenant scoping ({', '.join(replaced)}).")

    def dispatch(self, request, *args, **kwargs):
        # One transaction for the whole request, rendering included, so that row-level security
        # sees the key's tenant (set in `initial`); until then it sees no tenant row at all.
        if not rls.enabled():
            return super().dispatch(request, *args, **kwargs)
        with transaction.atomic():
            response = super().dispatch(request, *args, **kwargs)
            if hasattr(response, "render") and not response.is_rendered:
                response.render()
        return response

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.tenant = request.auth.tenant
        rls.set_local_tenant(self.tenant)
        hit = READ_LIMIT.hit(str(request.auth.pk), settings.READ_API_RATE_LIMIT_PER_MINUTE)
        if not hit.allowed:
            raise exceptions.Throttled(wait=hit.retry_after)

    def scoped(self, model):
        return model.objects.for_tenant(self.tenant)


# --- Endpoints --------------------------------------------------------------------


class TenantInfoApi(TenantAPIView):
    """Which workspace a read key belongs to: lets clients check their key."""

    @extend_schema(
        operation_id="tenant_retrieve",
        responses={
            200: inline_serializer(
                "TenantInfo",
                {
                    "name": serializers.CharField(),
                    "slug": serializers.CharField(),
                    "product_name": serializers.CharField(),
                    "time_zone": serializers.CharField(),
                },
            ),
            **error_responses(),
        }
    )
    def get(self, request):
        tenant = self.tenant
        return Response(
            {
                "name": tenant.name,
                "slug": tenant.slug,
                "product_name": tenant.product_name,
                "time_zone": tenant.time_zone,
            }
        )
