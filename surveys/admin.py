from django.contrib import admin

from .models import (
    ActivityRating,
    ProposedActivity,
    Survey,
    SurveyActivity,
    SurveyInvitee,
    SurveyResponse,
    SurveyShareLink,
)


class SurveyActivityInline(admin.TabularInline):
    model = SurveyActivity
    extra = 0
    fields = ["activity", "position"]
    raw_id_fields = ["activity"]


@admin.register(Survey)
class SurveyAdmin(admin.ModelAdmin):
    list_display = ["title", "tenant", "created_at", "closes_at", "closed_at", "anonymous"]
    list_filter = ["anonymous", "allow_proposals"]
    search_fields = ["title", "tenant__name", "tenant__slug"]
    readonly_fields = ["public_id", "created_at"]
    inlines = [SurveyActivityInline]


@admin.register(SurveyInvitee)
class SurveyInviteeAdmin(admin.ModelAdmin):
    list_display = ["email", "survey", "department", "invited_at", "opened_at", "reminder_count", "revoked_at"]
    search_fields = ["email", "survey__title"]
    # Only the hash of the link is stored; it must not be edited.
    readonly_fields = ["token_hash", "token_salt"]
    raw_id_fields = ["survey", "membership"]


class ActivityRatingInline(admin.TabularInline):
    model = ActivityRating
    extra = 0
    raw_id_fields = ["activity"]
    exclude = ["tenant"]


@admin.register(SurveyResponse)
class SurveyResponseAdmin(admin.ModelAdmin):
    list_display = ["survey", "department", "submitted_at", "updated_at"]
    list_filter = ["department"]
    search_fields = ["survey__title", "answer"]
    raw_id_fields = ["survey", "invitee", "share_link"]
    inlines = [ActivityRatingInline]


@admin.register(ProposedActivity)
class ProposedActivityAdmin(admin.ModelAdmin):
    list_display = ["name", "survey", "accepted_at"]
    search_fields = ["name", "survey__title"]
    raw_id_fields = ["survey", "response", "accepted_activity"]


@admin.register(SurveyShareLink)
class SurveyShareLinkAdmin(admin.ModelAdmin):
    list_display = ["survey", "created_at", "revoked_at", "open_count"]
    readonly_fields = ["token_hash", "token_salt", "open_count"]
    raw_id_fields = ["survey"]
