from django.contrib import admin

from .models import AccountScore, ActivityWeight, ProductScore, ScoringModel, ScoringRun, UserScore


class ActivityWeightInline(admin.TabularInline):
    model = ActivityWeight
    extra = 0
    raw_id_fields = ["activity"]


@admin.register(ScoringModel)
class ScoringModelAdmin(admin.ModelAdmin):
    list_display = ["tenant", "version", "name", "status", "window_days", "published_at"]
    list_filter = ["status"]
    search_fields = ["tenant__slug", "name"]
    inlines = [ActivityWeightInline]
    raw_id_fields = ["tenant", "created_by", "published_by"]


@admin.register(ScoringRun)
class ScoringRunAdmin(admin.ModelAdmin):
    list_display = ["tenant", "kind", "status", "first_day", "last_day", "attempts", "created_at", "finished_at"]
    list_filter = ["status", "kind"]
    search_fields = ["tenant__slug", "error"]
    raw_id_fields = ["tenant", "model", "requested_by"]


class SnapshotAdmin(admin.ModelAdmin):
    list_display = ["tenant", "day", "model", "points", "tier"]
    list_filter = ["tier"]
    date_hierarchy = "day"
    raw_id_fields = ["tenant", "model"]

    def has_add_permission(self, request):
        return False  # snapshots come from the engine only

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(UserScore)
class UserScoreAdmin(SnapshotAdmin):
    raw_id_fields = [*SnapshotAdmin.raw_id_fields, "end_user"]


@admin.register(AccountScore)
class AccountScoreAdmin(SnapshotAdmin):
    raw_id_fields = [*SnapshotAdmin.raw_id_fields, "account"]


@admin.register(ProductScore)
class ProductScoreAdmin(SnapshotAdmin):
    list_display = ["tenant", "day", "model", "total_points", "active_users", "engaged_users"]
    list_filter = []
