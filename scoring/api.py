"""The scoring read API (read key): users, accounts, product series and the published model.

Every view subclasses accounts.api.TenantAPIView: the tenant comes from the
key, objects are looked up through `self.scoped(Model)` (another tenant's id is
a 404), errors have the one shape {"error": {"code", "message", "field"}}.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from accounts.api import QueryParams, TenantAPIView, error_responses

from . import selectors
from .models import Tier


class ScorePagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def _paginated(name: str, item: serializers.Serializer):
    return inline_serializer(
        name,
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item,
        },
    )


class UserScoreSerializer(serializers.Serializer):
    userId = serializers.CharField(source="end_user.user_id", allow_null=True)  # noqa: N815 - Segment's name
    name = serializers.CharField(source="end_user.display_name")
    groupId = serializers.SerializerMethodField()  # noqa: N815
    day = serializers.DateField()
    version = serializers.IntegerField(source="model.version")
    points = serializers.FloatField()
    breadth = serializers.IntegerField()
    active_days = serializers.IntegerField()
    percentile = serializers.FloatField(allow_null=True)
    tier = serializers.ChoiceField(choices=Tier.choices)

    def get_groupId(self, row) -> str | None:  # noqa: N802
        account = row.end_user.account
        return account.group_id if account else None


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


class UserListApi(TenantAPIView):
    """The latest user snapshots of the published model, filtered and paginated."""

    class InputSerializer(QueryParams):
        tier = serializers.ChoiceField(choices=Tier.choices, required=False)
        account = serializers.CharField(
            required=False, max_length=255, trim_whitespace=False, help_text="an account's groupId, exactly as sent"
        )
        order = serializers.ChoiceField(choices=list(selectors.USER_ORDERS), required=False, default="-points")
        page = serializers.IntegerField(required=False, min_value=1)
        page_size = serializers.IntegerField(required=False, min_value=1, max_value=500)

    @extend_schema(
        operation_id="users_list",
        parameters=[InputSerializer],
        responses={200: _paginated("UserScorePage", UserScoreSerializer(many=True)), **error_responses(400, 404)},
    )
    def get(self, request):
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        account = None
        if "account" in params.validated_data:
            account = selectors.account_by_group_id(self.tenant, params.validated_data["account"])
            if account is None:
                raise NotFound("No account with this groupId.")
        rows = selectors.user_snapshots(
            self.tenant,
            tier=params.validated_data.get("tier"),
            account=account,
            order=params.validated_data["order"],
        )
        paginator = ScorePagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(UserScoreSerializer(page, many=True).data)


class UserDetailApi(TenantAPIView):
    """One end user's latest snapshot and the daily history of the last 90 days."""

    @extend_schema(
        operation_id="users_retrieve",
        parameters=[OpenApiParameter("user_id", str, OpenApiParameter.PATH, description="the end user's userId")],
        responses={
            200: inline_serializer(
                "UserScoreDetail",
                {"latest": UserScoreSerializer(allow_null=True), "history": UserHistoryPointSerializer(many=True)},
            ),
            **error_responses(404),
        },
    )
    def get(self, request, user_id: str):
        end_user = selectors.end_user_by_user_id(self.tenant, user_id)
        if end_user is None:
            raise NotFound("No end user with this userId.")
        latest = selectors.latest_user_snapshot(self.tenant, end_user)
        if latest is not None:
            latest.end_user = end_user
        history = selectors.user_history(self.tenant, end_user)
        return Response(
            {
                "latest": UserScoreSerializer(latest).data if latest else None,
                "history": UserHistoryPointSerializer(history, many=True).data,
            }
        )


class AccountListApi(TenantAPIView):
    """The latest account snapshots of the published model, filtered and paginated."""

    class InputSerializer(QueryParams):
        tier = serializers.ChoiceField(choices=Tier.choices, required=False)
        order = serializers.ChoiceField(choices=list(selectors.ACCOUNT_ORDERS), required=False, default="-points")
        page = serializers.IntegerField(required=False, min_value=1)
        page_size = serializers.IntegerField(required=False, min_value=1, max_value=500)

    @extend_schema(
        operation_id="accounts_list",
        parameters=[InputSerializer],
        responses={200: _paginated("AccountScorePage", AccountScoreSerializer(many=True)), **error_responses(400, 404)},
    )
    def get(self, request):
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        rows = selectors.account_snapshots(
            self.tenant, tier=params.validated_data.get("tier"), order=params.validated_data["order"]
        )
        paginator = ScorePagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(AccountScoreSerializer(page, many=True).data)


class AccountDetailApi(TenantAPIView):
    """One account's latest snapshot and the daily history of the last 90 days."""

    @extend_schema(
        operation_id="accounts_retrieve",
        parameters=[OpenApiParameter("group_id", str, OpenApiParameter.PATH, description="the account's groupId")],
        responses={
            200: inline_serializer(
                "AccountScoreDetail",
                {
                    "latest": AccountScoreSerializer(allow_null=True),
                    "history": AccountHistoryPointSerializer(many=True),
                },
            ),
            **error_responses(404),
        },
    )
    def get(self, request, group_id: str):
        account = selectors.account_by_group_id(self.tenant, group_id)
        if account is None:
            raise NotFound("No account with this groupId.")
        latest = selectors.latest_account_snapshot(self.tenant, account)
        if latest is not None:
            latest.account = account
        history = selectors.account_history(self.tenant, account)
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
        parameters=[InputSerializer],
        responses={
            200: inline_serializer("ProductSeries", {"series": ProductPointSerializer(many=True)}),
            **error_responses(400),
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
        responses={
            **error_responses(404),
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
                },
            ),
        }
    )
    def get(self, request):
        from .modelfile import model_to_dict

        model = selectors.published_model(self.tenant)
        if model is None:
            raise NotFound("No scoring model is published yet.")
        body = model_to_dict(model)
        body.pop("format")
        return Response({"version": model.version, "published_at": model.published_at, **body})
