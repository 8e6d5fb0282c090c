from django import forms

from .models import ScoringModel
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
            "trend_days": "Falling: compare with (days earlier)",
            "falling_drop_pct": "Falling: points down by at least (%)",
        }
        help_texts = {
            "tier_high": "A percentile (0-100) or points, depending on the tier rule.",
            "grace_days": "End users first seen this recently show as “new”, not “low”. 0 turns it off.",
        }

    def __init__(self, *args, weights=(), **kwargs):
        super().__init__(*args, **kwargs)
        # Left out (a form from before the falling flag): the version keeps its own.
        self.fields["trend_days"].required = False
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

    def clean_trend_days(self):
        return self.cleaned_data.get("trend_days") or self.instance.trend_days

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
