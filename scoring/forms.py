from django import forms

from core.sql import TRAIT_KEY

from .models import ScoringModel, Tier
from .selectors import ACCOUNT_LIST_SORTS, USER_LIST_SORTS, ListFilter
from .services import MODEL_FIELDS


class ScoringModelForm(forms.ModelForm):
    """A draft's settings plus one points field per catalog activity (`points_<activity public id>`)."""

    class Meta:
        model = ScoringModel
        fields = list(MODEL_FIELDS)
        labels = {
            "window_days": "Window (days)",
            "daily_cap": "Per-day cap",
            "half_life_days": "Recency half-life (days)",
            "tier_method": "Tier rule",
            "tier_high": "High tier from",
            "tier_medium": "Medium tier from",
            "grace_days": "Grace period for new end users (days)",
            "account_rollup": "Account roll-up",
        }
        help_texts = {
            "tier_high": "A percentile (0-100) or points, depending on the tier rule.",
            "grace_days": "End users first seen this recently show as “new”, not “low”. 0 turns it off.",
        }

    def __init__(self, *args, weights=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.activity_fields = []
        for row in weights:
            activity = row["activity"]
            name = f"points_{activity.public_id}"
            self.fields[name] = forms.IntegerField(
                label=str(activity),
                min_value=0,
                max_value=1000,
                required=False,
                initial=row["points"],
                help_text="" if activity.is_tracked else "not tracked yet",
            )
            self.activity_fields.append((activity, name))

    def points(self) -> dict[int, int]:
        """Activity id -> points for the activities given more than 0 points."""
        return {
            activity.pk: self.cleaned_data[name]
            for activity, name in self.activity_fields
            if self.cleaned_data.get(name)
        }

    def settings_fields(self):
        return [self[name] for name in MODEL_FIELDS]

    def points_fields(self):
        return [self[name] for _, name in self.activity_fields]


class ImportModelForm(forms.Form):
    file = forms.FileField(label="Model file (JSON)")


class RecomputeForm(forms.Form):
    days = forms.IntegerField(min_value=1, max_value=366, initial=90, label="Days to recompute, ending today")


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


class _ListFilterForm(forms.Form):
    """Filters shared by the users and accounts lists. Every field is optional; bad values are form errors."""

    q = forms.CharField(required=False, max_length=100, label="Search")
    tier = forms.ChoiceField(choices=[("", "All tiers"), *Tier.choices], required=False)
    plan = forms.CharField(required=False, max_length=100)
    trait = forms.CharField(required=False, max_length=64, label="Trait name")
    trait_value = forms.CharField(required=False, max_length=200, label="Trait value")

    def clean_trait(self):
        trait = self.cleaned_data["trait"].strip()
        if trait and not TRAIT_KEY.match(trait):
            raise forms.ValidationError("Trait names are letters, digits, spaces, “_” and “-”.")
        return trait

    def clean(self):
        data = super().clean()
        if bool(data.get("trait")) != bool(data.get("trait_value", "").strip()) and "trait" not in self.errors:
            raise forms.ValidationError("Give both a trait name and a value to filter by a trait.")
        return data

    def list_filter(self, **extra) -> ListFilter:
        data = self.cleaned_data
        trait = (data["trait"], data["trait_value"].strip()) if data.get("trait") else None
        return ListFilter(
            tier=data.get("tier") or None,
            plan=data.get("plan", "").strip() or None,
            trait=trait,
            search=data.get("q", "").strip() or None,
            **extra,
        )

    def order(self) -> str:
        return self.cleaned_data.get("order") or "-points"


class UserFilterForm(_ListFilterForm):
    account = forms.CharField(required=False, max_length=255, label="Account group id")
    order = forms.ChoiceField(choices=_order_choices(USER_LIST_SORTS), required=False)


class AccountFilterForm(_ListFilterForm):
    order = forms.ChoiceField(choices=_order_choices(ACCOUNT_LIST_SORTS), required=False)
    owner = forms.CharField(required=False, max_length=254, label="Owner",
                            help_text="A member's email, or “none” for accounts without an owner.")
    renews_within = forms.IntegerField(required=False, min_value=0, max_value=3660, label="Renews within (days)")
