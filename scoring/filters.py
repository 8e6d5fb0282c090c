"""The users and accounts lists' filters: one FilterSet each (django-filter), shared by the pages,
their CSV downloads, the account page's members and the read API's list endpoints.

Every filter reads a column stored on the snapshot (scoring.engine writes the changes and the last
day seen with the points) or a trait of the subject, so a list is one ORM queryset: a COUNT and a
page query. Bad input is a form error (the page answers 400, the API 400 or 404).
"""

from __future__ import annotations

from datetime import timedelta

import django_filters
from django import forms
from django.db.models import F, Func, Q, QuerySet, TextField
from django.db.models.functions import Coalesce, Lower

from core.sql import TRAIT_KEY
from events.models import CustomerAccount

from . import sync
from .models import Tier

LIST_SORTS = ("points", "change_7", "change_30", "percentile", "last_seen")
USER_LIST_SORTS = (*LIST_SORTS, "breadth", "active_days")
ACCOUNT_LIST_SORTS = (*LIST_SORTS, "active_users", "renewal_date")
# Sort keys that are not a snapshot column of the same name.
SORT_FIELDS = {"renewal_date": "account__renewal_date"}

SORT_LABELS = {
    "points": "points",
    "change_7": "change over 7 days",
    "change_30": "change over 30 days",
    "percentile": "percentile",
    "last_seen": "last seen",
    "breadth": "breadth",
    "active_days": "active days",
    "active_users": "active users",
    "renewal_date": "renewal date",
}


def _order_choices(sorts) -> list[tuple[str, str]]:
    choices = []
    for sort in sorts:
        choices += [
            (f"-{sort}", f"{SORT_LABELS[sort]}, high first"),
            (sort, f"{SORT_LABELS[sort]}, low first"),
        ]
    return choices


class Trait(Func):
    """A top-level JSON trait as text, read as core.sql.trait_sql reads it (PostgreSQL ->>, SQLite
    json_extract), so numbers and booleans compare as their JSON text on both databases."""

    output_field = TextField()

    def __init__(self, traits: str, key: str):
        if not TRAIT_KEY.match(key):
            raise ValueError("Trait names are letters, digits, spaces, '_' and '-'.")
        super().__init__(F(traits))
        self.key = key

    def as_sql(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        if connection.vendor == "postgresql":
            return f"({column} ->> %s)", [*params, self.key]
        return f"CAST(json_extract({column}, %s) AS TEXT)", [*params, f'$."{self.key}"']


class ListFilterForm(forms.Form):
    """The lists' form (the FilterSet adds its filters' fields): checks that need more than one field
    or the workspace. `tenant` is set by the FilterSet before validation."""

    tenant = None

    def clean_trait(self):
        trait = (self.cleaned_data.get("trait") or "").strip()
        if trait and not TRAIT_KEY.match(trait):
            raise forms.ValidationError("Trait names are letters, digits, spaces, “_” and “-”.")
        return trait

    def clean_account(self):
        group_id = self.cleaned_data.get("account") or ""
        if not group_id:
            return None
        account = CustomerAccount.objects.for_tenant(self.tenant).filter(group_id=group_id).first()
        if account is None:
            raise forms.ValidationError("No account with this group id.")
        return account

    def clean_owner(self):
        from accounts.models import Membership

        owner = (self.cleaned_data.get("owner") or "").strip().lower()
        if not owner:
            return None
        member = Membership.objects.for_tenant(self.tenant).filter(user__email__iexact=owner).first()
        if owner != "none" and member is None:
            raise forms.ValidationError("No member of this workspace has this email.")
        return member.user_id if member else 0  # 0: accounts without an owner

    def clean(self):
        data = super().clean()
        if bool(data.get("trait")) != bool((data.get("trait_value") or "").strip()) and "trait" not in self.errors:
            raise forms.ValidationError("Give both a trait name and a value to filter by a trait.")
        return data


def _iexact(rows: QuerySet, expression, value: str) -> QuerySet:
    """Rows whose text `expression` equals `value`, ignoring case."""
    return rows.alias(_match=Lower(expression)).filter(_match=value.lower())


class IntegerFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField


class _SnapshotFilter(django_filters.FilterSet):
    """Filters shared by both lists. Every field is optional; no query is a valid, empty filter."""

    q = django_filters.CharFilter(method="filter_search", max_length=100, label="Search")
    tier = django_filters.ChoiceFilter(choices=Tier.choices, empty_label="All tiers")
    plan = django_filters.CharFilter(method="filter_plan", max_length=100)
    trait = django_filters.CharFilter(method="filter_trait", max_length=64, label="Trait name")
    trait_value = django_filters.CharFilter(method="filter_nothing", max_length=200, label="Trait value")
    falling = django_filters.BooleanFilter(method="filter_falling", widget=forms.CheckboxInput, label="Falling only")

    subject = ""  # "end_user" or "account": the snapshot's subject field
    sorts: tuple[str, ...] = ()

    class Meta:
        form = ListFilterForm
        fields: list[str] = []

    def __init__(self, data=None, queryset=None, *, tenant, days=None, **kwargs):
        self.tenant, self.days = tenant, days
        super().__init__(data, queryset, **kwargs)

    @property
    def form(self):
        form = super().form
        form.tenant = self.tenant  # the clean_* methods look accounts and members up in this workspace
        return form

    def filter_falling(self, rows, name, value):
        # Only a ticked box narrows the list: unticked lists everyone, not only those not falling.
        return rows.filter(falling=True) if value else rows

    def filter_nothing(self, rows, name, value):
        return rows  # read by another filter (trait_value by trait, order by filter_queryset)

    def filter_trait(self, rows, name, value):
        return _iexact(rows, Trait(f"{self.subject}__traits", value), self.form.cleaned_data["trait_value"].strip())

    def filter_queryset(self, queryset):
        return self.order(super().filter_queryset(queryset), self.form.cleaned_data.get("order") or "-points")

    def order(self, rows: QuerySet, order: str) -> QuerySet:
        """Sorted by `order` (a sort, "-" for high first): unknown values (no percentile, never seen) last
        in both directions, ties on the subject. With nothing scored that far back, a change sorts by points."""
        sort, descending = order.lstrip("-"), order.startswith("-")
        compared = {"change_7": "day_7", "change_30": "day_30"}
        if sort in compared and self.days is not None and getattr(self.days, compared[sort]) is None:
            sort = "points"
        field = F(SORT_FIELDS.get(sort, sort))
        key = field.desc(nulls_last=True) if descending else field.asc(nulls_last=True)
        subject = f"-{self.subject}_id" if descending else f"{self.subject}_id"
        return rows.order_by(key, subject)


class UserListFilter(_SnapshotFilter):
    account = django_filters.CharFilter(method="filter_account", max_length=255, label="Account group id",
                                        strip=False)
    order = django_filters.ChoiceFilter(choices=_order_choices(USER_LIST_SORTS), method="filter_nothing",
                                        empty_label=None)

    subject, sorts = "end_user", USER_LIST_SORTS

    def filter_account(self, rows, name, account):
        # Membership, not the primary account: a user in two accounts is listed under both.
        return sync.in_account(rows, account, "end_user")

    def filter_plan(self, rows, name, value):
        plan = Coalesce(Trait("end_user__traits", "plan"), Trait("end_user__account__traits", "plan"))
        return _iexact(rows, plan, value)

    def filter_search(self, rows, name, value):
        rows = rows.alias(_email=Trait("end_user__traits", "email"), _name=Trait("end_user__traits", "name"))
        return rows.filter(
            Q(end_user__user_id__icontains=value) | Q(_email__icontains=value) | Q(_name__icontains=value)
        )


class AccountListFilter(_SnapshotFilter):
    order = django_filters.ChoiceFilter(choices=_order_choices(ACCOUNT_LIST_SORTS), method="filter_nothing",
                                        empty_label=None)
    owner = django_filters.CharFilter(method="filter_owner", max_length=254, label="Owner",
                                      help_text="A member's email, or “none” for accounts without an owner.")
    renews_within = IntegerFilter(method="filter_renews", min_value=0, max_value=3660, label="Renews within (days)")

    subject, sorts = "account", ACCOUNT_LIST_SORTS

    def filter_plan(self, rows, name, value):
        return _iexact(rows, Trait("account__traits", "plan"), value)

    def filter_search(self, rows, name, value):
        return rows.filter(Q(account__group_id__icontains=value) | Q(account__name__icontains=value))

    def filter_owner(self, rows, name, owner_id):
        return rows.filter(account__owner_id=owner_id) if owner_id else rows.filter(account__owner__isnull=True)

    def filter_renews(self, rows, name, days):
        return rows.filter(account__renewal_date__lte=self.tenant.today() + timedelta(days=days))
