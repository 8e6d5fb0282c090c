"""The scoring read API (read key): users, accounts, product series and the published model.

Every view subclasses accounts.api.TenantAPIView: the tenant comes from the
key, objects are looked up through `self.scoped(Model)` (another tenant's id is
a 404), errors have the one shape {"code", "message", "field"} (core.api_errors).
Lists page by cursor (scoring.pagination); docs/api.md has the rules.
"""

from datetime import date

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from accounts.api import QueryParams, TenantAPIView, error_responses

from . import filters, pagination, selectors, sync
from .models import AccountScore, ProductScore, ScoringModel, Tier, UserScore


class UserScoreSerializer(serializers.Serializer):
    """A user row: the end user (ids, name, email, traits, accounts) and its snapshot of the day.

    With `include_unscored`, identified end users with no snapshot that day are rows
    too, with the snapshot columns null.
    """

    userId = serializers.CharField(source="end_user.user_id", allow_null=True)  # noqa: N815 - Segment's name
    name = serializers.CharField(source="end_user.display_name")
    email = serializers.SerializerMethodField()
    traits = serializers.DictField(source="end_user.traits")
    groupId = serializers.SerializerMethodField(help_text="The primary account (the last one grouped).")  # noqa: N815
    groupIds = serializers.SerializerMethodField(help_text="Every account the end user belongs to now.")  # noqa: N815
    first_seen_at = serializers.DateTimeField(source="end_user.first_seen_at")
    updated_at = serializers.DateTimeField(source="end_user.updated_at", help_text="When traits last changed.")
    day = serializers.DateField(allow_null=True)
    version = serializers.IntegerField(source="model.version", allow_null=True)
    points = serializers.FloatField(allow_null=True)
    breadth = serializers.IntegerField(allow_null=True)
    active_days = serializers.IntegerField(allow_null=True)
    percentile = serializers.FloatField(allow_null=True)
    tier = serializers.ChoiceField(choices=Tier.choices, allow_null=True)

    def get_email(self, row) -> str | None:
        email = row.end_user.traits.get("email")
        return email if isinstance(email, str) else None

    def get_groupId(self, row) -> str | None:  # noqa: N802
        account = row.end_user.account
        return account.group_id if account else None

    def get_groupIds(self, row) -> list[str]:  # noqa: N802
        memberships = getattr(row.end_user, "open_memberships", None)
        if memberships is None:
            memberships = row.end_user.memberships.filter(ended_at__isnull=True).select_related("account")
        return sorted({m.account.group_id for m in memberships})


class HistoryPointSerializer(serializers.Serializer):
    day = serializers.DateField()
    version = serializers.IntegerField(source="model.version")
    points = serializers.FloatField()
    percentile = serializers.FloatField(allow_null=True)
    tier = serializers.ChoiceField(choices=Tier.choices)


class UserHistoryPointSerializer(HistoryPointSerializer):
    breadth = serializers.IntegerField()
    active_days = serializers.IntegerField()


class AccountScoreSerializer(serializers.Serializer):
    groupId = serializers.CharField(source="account.group_id")  # noqa: N815
    name = serializers.CharField(source="account.name")
    traits = serializers.DictField(source="account.traits")
    first_seen_at = serializers.DateTimeField(source="account.first_seen_at")
    updated_at = serializers.DateTimeField(source="account.updated_at", help_text="When traits last changed.")
    day = serializers.DateField()
    version = serializers.IntegerField(source="model.version")
    points = serializers.FloatField()
    active_users = serializers.IntegerField()
    seats = serializers.IntegerField()
    percentile = serializers.FloatField(allow_null=True)
    tier = serializers.ChoiceField(choices=Tier.choices)


class AccountHistoryPointSerializer(HistoryPointSerializer):
    active_users = serializers.IntegerField()
    seats = serializers.IntegerField()


# --- Parameters, in small pieces (mixed into each list's query-string serializer) -----------


class SyncParams(serializers.Serializer):
    day = serializers.DateField(
        required=False, help_text="The snapshots of this tenant day (YYYY-MM-DD) instead of the latest one."
    )
    updated_since = serializers.DateTimeField(
        required=False,
        help_text="Only rows that changed: a snapshot that differs from the subject's one on the day before "
        "this time's day, or traits changed at or after it (docs/api.md).",
    )


class NoPageNumber(serializers.Serializer):
    """`page` (the old page numbers) is a 400 naming it; not in the schema, as no value is valid."""

    def to_internal_value(self, data):
        if "page" in data:
            raise ValidationError({"page": ["Pagination is by cursor: follow the `next` link (cursor=...)."]})
        return super().to_internal_value(data)


def _keyset_sort(order: str) -> str:
    """The keyset column of an order. Percentile follows points within a day (CUME_DIST over
    points) but moves when a recompute adds subjects; points do not, so cursors sort by points."""
    return order.replace("percentile", "points")


def _list_day(tenant, params: dict, cursor):
    """(model, day) of a list: the cursor's pin, else `day` or the latest scored day of the published model."""
    if cursor is not None:
        model_id, day = cursor.pin.get("m"), cursor.pin.get("d")
        model = ScoringModel.objects.for_tenant(tenant).filter(pk=model_id).first() if model_id else None
        if model_id and model is None:
            raise pagination.CursorNotFound("The model version of this cursor is gone: start again.")
        return model, date.fromisoformat(day) if day else None
    model = selectors.published_model(tenant)
    if "day" in params:
        if model is None or not ProductScore.objects.for_tenant(tenant).filter(model=model, day=params["day"]).exists():
            raise NotFound("This day has no snapshots under the published model.")
        return model, params["day"]
    return model, selectors.latest_day(tenant, model)


def _day_snapshots(model_cls, tenant, model, day):
    if model is None or day is None:
        return model_cls.objects.none()
    return model_cls.objects.for_tenant(tenant).filter(model=model, day=day)


def _filterset(filterset_class, tenant, rows, data: dict):
    """The list's FilterSet over `rows`, the pages' own (scoring.filters), checked; its `qs` is
    filtered (the cursor pagination sets the order)."""
    filterset = filterset_class(data, rows, tenant=tenant)
    if not filterset.is_valid():
        if "account" in filterset.errors:
            raise NotFound("No account with this groupId.")
        raise ValidationError(filterset.errors)
    return filterset


def _pin(model, day, digest: str) -> dict:
    return {"m": model.pk if model else None, "d": day.isoformat() if day else None, "q": digest}


def _page_response(request, serializer_class, phases, pin, cursor, params) -> Response:
    rows, link, count = pagination.paginate(request, phases, pin, cursor, params.get("page_size"))
    return Response({"count": count, "next": link, "results": serializer_class(rows, many=True).data})


class UserListApi(TenantAPIView):
    """User rows of one day (the latest by default) under the published model, by cursor."""

    class InputSerializer(QueryParams, pagination.PageParams, SyncParams, NoPageNumber):
        tier = serializers.ChoiceField(choices=Tier.choices, required=False)
        account = serializers.CharField(
            required=False,
            max_length=255,
            trim_whitespace=False,
            help_text="an account's groupId, exactly as sent: its members now (every member, not only primary)",
        )
        order = serializers.ChoiceField(choices=list(selectors.USER_ORDERS), required=False, default="-points")
        include_unscored = serializers.BooleanField(
            required=False,
            default=False,
            help_text="Also list identified end users with no snapshot that day (score columns null), after "
            "the scored ones.",
        )

    @extend_schema(
        operation_id="users_list",
        parameters=[InputSerializer],
        responses={200: pagination.page_schema("UserScorePage", UserScoreSerializer(many=True)), **error_responses()},
    )
    def get(self, request):
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        digest = pagination.filters_digest({k: v for k, v in data.items() if k not in ("cursor", "page_size")})
        cursor = pagination.start(data, digest)
        model, day = _list_day(self.tenant, data, cursor)
        filterset = _filterset(
            filters.UserListFilter,
            self.tenant,
            _day_snapshots(UserScore, self.tenant, model, day).select_related("end_user", "end_user__account", "model"),
            {"tier": data.get("tier", ""), "account": data.get("account", "")},
        )
        rows, account = filterset.qs, filterset.form.cleaned_data.get("account")
        rows = rows.prefetch_related(sync.open_memberships(self.tenant, "end_user__"))
        if "updated_since" in data and model is not None:
            rows = sync.users_changed_since(rows, self.tenant, model, data["updated_since"])
        phases = [pagination.Phase(rows, key="end_user_id", sort=_keyset_sort(selectors.USER_ORDERS[data["order"]]))]
        if data["include_unscored"] and not data.get("tier"):
            unscored = sync.unscored_users(self.tenant, model, day).select_related("account")
            unscored = unscored.prefetch_related(sync.open_memberships(self.tenant))
            if account is not None:
                unscored = sync.in_account(unscored, account)
            if "updated_since" in data:
                unscored = sync.unscored_changed_since(unscored, data["updated_since"])
            phases.append(pagination.Phase(unscored, key="id"))
        rows_, link, count = pagination.paginate(
            request, phases, _pin(model, day, digest), cursor, data.get("page_size")
        )
        items = [row if isinstance(row, UserScore) else sync.Unscored(end_user=row) for row in rows_]
        return Response({"count": count, "next": link, "results": UserScoreSerializer(items, many=True).data})


class HistoryParams(QueryParams):
    days = serializers.IntegerField(
        required=False, min_value=1, max_value=366, default=selectors.HISTORY_DAYS,
        help_text="How many tenant days back from today the history goes.",
    )  # fmt: skip


_HISTORY_RULE = (
    " The history has one point per tenant day of the last `days` days (default 90) on which the subject has a "
    "snapshot, the newest model version's for that day. Users and accounts follow the same rule: an end user has "
    "snapshots from the day first seen (dormant until active), an account from the day first seen or its first "
    "member joined, so a user first seen 3 days ago has 3 points while the account has 90."
)


class UserDetailApi(TenantAPIView):
    __doc__ = "One end user: the latest snapshot and the daily history." + _HISTORY_RULE

    @extend_schema(
        operation_id="users_retrieve",
        parameters=[
            OpenApiParameter("user_id", str, OpenApiParameter.PATH, description="the end user's userId"),
            HistoryParams,
        ],
        responses={
            200: inline_serializer(
                "UserScoreDetail",
                {"latest": UserScoreSerializer(allow_null=True), "history": UserHistoryPointSerializer(many=True)},
            ),
            **error_responses(),
        },
    )
    def get(self, request, user_id: str):
        params = HistoryParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        end_user = selectors.end_user_by_user_id(self.tenant, user_id)
        if end_user is None:
            raise NotFound("No end user with this userId.")
        latest = selectors.latest_user_snapshot(self.tenant, end_user)
        if latest is not None:
            latest.end_user = end_user
        history = selectors.user_history(self.tenant, end_user, days=params.validated_data["days"])
        return Response(
            {
                "latest": UserScoreSerializer(latest).data if latest else None,
                "history": UserHistoryPointSerializer(history, many=True).data,
            }
        )


class AccountListApi(TenantAPIView):
    """Account rows of one day (the latest by default) under the published model, by cursor."""

    class InputSerializer(QueryParams, pagination.PageParams, SyncParams, NoPageNumber):
        tier = serializers.ChoiceField(choices=Tier.choices, required=False)
        order = serializers.ChoiceField(choices=list(selectors.ACCOUNT_ORDERS), required=False, default="-points")

    @extend_schema(
        operation_id="accounts_list",
        parameters=[InputSerializer],
        responses={
            200: pagination.page_schema("AccountScorePage", AccountScoreSerializer(many=True)),
            **error_responses(),
        },
    )
    def get(self, request):
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        digest = pagination.filters_digest({k: v for k, v in data.items() if k not in ("cursor", "page_size")})
        cursor = pagination.start(data, digest)
        model, day = _list_day(self.tenant, data, cursor)
        rows = _filterset(
            filters.AccountListFilter,
            self.tenant,
            _day_snapshots(AccountScore, self.tenant, model, day).select_related("account", "model"),
            {"tier": data.get("tier", "")},
        ).qs
        if "updated_since" in data and model is not None:
            rows = sync.accounts_changed_since(rows, self.tenant, model, data["updated_since"])
        phases = [pagination.Phase(rows, key="account_id", sort=_keyset_sort(selectors.ACCOUNT_ORDERS[data["order"]]))]
        return _page_response(request, AccountScoreSerializer, phases, _pin(model, day, digest), cursor, data)


class AccountDetailApi(TenantAPIView):
    __doc__ = "One account: the latest snapshot and the daily history." + _HISTORY_RULE

    @extend_schema(
        operation_id="accounts_retrieve",
        parameters=[
            OpenApiParameter("group_id", str, OpenApiParameter.PATH, description="the account's groupId"),
            HistoryParams,
        ],
        responses={
            200: inline_serializer(
                "AccountScoreDetail",
                {
                    "latest": AccountScoreSerializer(allow_null=True),
                    "history": AccountHistoryPointSerializer(many=True),
                },
            ),
            **error_responses(),
        },
    )
    def get(self, request, group_id: str):
        params = HistoryParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        account = selectors.account_by_group_id(self.tenant, group_id)
        if account is None:
            raise NotFound("No account with this groupId.")
        latest = selectors.latest_account_snapshot(self.tenant, account)
        if latest is not None:
            latest.account = account
        history = selectors.account_history(self.tenant, account, days=params.validated_data["days"])
        return Response(
            {
                "latest": AccountScoreSerializer(latest).data if latest else None,
                "history": AccountHistoryPointSerializer(history, many=True).data,
            }
        )


class ProductPointSerializer(serializers.Serializer):
    day = serializers.DateField()
    version = serializers.IntegerField(source="model.version")
    total_points = serializers.FloatField()
    mean_points = serializers.FloatField()
    median_points = serializers.FloatField()
    active_users = serializers.IntegerField()
    engaged_users = serializers.IntegerField()
    high_users = serializers.IntegerField()
    medium_users = serializers.IntegerField()
    low_users = serializers.IntegerField()
    new_users = serializers.IntegerField()
    dormant_users = serializers.IntegerField()


class ProductApi(TenantAPIView):
    """The product's daily series (newest model version per day)."""

    class InputSerializer(QueryParams):
        days = serializers.IntegerField(required=False, min_value=1, max_value=366, default=90)

    @extend_schema(
        operation_id="product_retrieve",
        parameters=[InputSerializer],
        responses={
            200: inline_serializer("ProductSeries", {"series": ProductPointSerializer(many=True)}),
            **error_responses(),
        },
    )
    def get(self, request):
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        series = selectors.product_series(self.tenant, days=params.validated_data["days"])
        return Response({"series": ProductPointSerializer(series, many=True).data})


class ScoringModelApi(TenantAPIView):
    """The published scoring model."""

    @extend_schema(
        operation_id="model_retrieve",
        responses={
            **error_responses(),
            200: inline_serializer(
                "ScoringModel",
                {
                    "version": serializers.IntegerField(),
                    "name": serializers.CharField(),
                    "published_at": serializers.DateTimeField(),
                    "points": serializers.DictField(child=serializers.IntegerField()),
                    "window_days": serializers.IntegerField(),
                    "daily_cap": serializers.IntegerField(allow_null=True),
                    "half_life_days": serializers.IntegerField(allow_null=True),
                    "tier_rule": inline_serializer(
                        "TierRule",
                        {
                            "method": serializers.CharField(),
                            "high": serializers.FloatField(),
                            "medium": serializers.FloatField(),
                        },
                    ),
                    "grace_days": serializers.IntegerField(),
                    "account_rollup": serializers.CharField(),
                    "falling": inline_serializer(
                        "FallingRule",
                        {
                            "trend_days": serializers.IntegerField(),
                            "drop_pct": serializers.IntegerField(allow_null=True),
                        },
                    ),
                },
            ),
        },
    )
    def get(self, request):
        from .modelfile import model_to_dict

        model = selectors.published_model(self.tenant)
        if model is None:
            raise NotFound("No scoring model is published yet.")
        body = model_to_dict(model)
        body.pop("format")
        return Response({"version": model.version, "published_at": model.published_at, **body})
