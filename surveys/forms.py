from datetime import datetime, time

from django import forms
from django.core.exceptions import ValidationError

from accounts.models import Department, Membership
from events.models import Activity

from .models import IMPORTANCE_MAX, IMPORTANCE_MIN
from .services import Proposal, parse_emails

NOT_RELEVANT = "na"
RATING_CHOICES = [(str(i), str(i)) for i in range(IMPORTANCE_MIN, IMPORTANCE_MAX + 1)] + [
    (NOT_RELEVANT, "Not relevant")
]
PROPOSAL_ROWS = 3
PROPOSAL_RATING_CHOICES = [("", "—")] + [(str(i), str(i)) for i in range(IMPORTANCE_MIN, IMPORTANCE_MAX + 1)]


class ActivityChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        return str(obj) + ("" if obj.is_tracked else " (not tracked yet)")


class SurveyForm(forms.Form):
    title = forms.CharField(max_length=200)
    question = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=1000,
        required=False,
        help_text="Leave empty for the default question.",
    )
    closes_on = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        label="Closing date",
        help_text="Optional: answers are refused after the end of this day (workspace time zone).",
    )
    activities = ActivityChoiceField(
        queryset=Activity.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Activities to rate",
        help_text="Pre-filled from your activity catalog. Respondents rate each 0-10.",
    )
    allow_proposals = forms.BooleanField(required=False, initial=True, label="Respondents may propose new activities")
    anonymous = forms.BooleanField(
        required=False, label="Answers are anonymous", help_text="Results show departments, never names."
    )

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        catalog = Activity.objects.for_tenant(tenant).filter(test_only=False)  # no test-only names
        self.fields["activities"].queryset = catalog.order_by("name")
        self.fields["question"].widget.attrs["placeholder"] = f"An engaged user of {tenant.product_name} does…"

    def clean_closes_on(self):
        closes_on = self.cleaned_data["closes_on"]
        if closes_on and closes_on < self.tenant.today():
            raise ValidationError("The closing date is in the past.")
        return closes_on

    def clean(self):
        data = super().clean()
        if not data.get("activities") and not data.get("allow_proposals"):
            raise ValidationError("Choose activities to rate, or let respondents propose activities.")
        return data

    def service_kwargs(self) -> dict:
        data = dict(self.cleaned_data)
        closes_on = data.pop("closes_on")
        data["closes_at"] = (
            datetime.combine(closes_on, time.max).replace(tzinfo=self.tenant.tzinfo) if closes_on else None
        )
        data["activities"] = list(data["activities"])
        return data


class MemberChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.user.get_full_name()} · {obj.get_department_display()}"


class InviteForm(forms.Form):
    departments = forms.MultipleChoiceField(
        choices=Department.choices, required=False, widget=forms.CheckboxSelectMultiple, label="Whole departments"
    )
    members = MemberChoiceField(
        queryset=Membership.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        to_field_name="public_id",
        label="Members, one by one",
    )
    emails = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Email addresses",
        help_text="People without a login: separate with commas or new lines.",
    )

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["members"].queryset = Membership.objects.for_tenant(tenant).select_related("user")

    def clean_emails(self):
        return parse_emails(self.cleaned_data["emails"])

    def clean(self):
        data = super().clean()
        if not self.errors and not (data.get("departments") or data.get("members") or data.get("emails")):
            raise ValidationError("Choose at least one member, department or email address.")
        return data


class AnswerForm(forms.Form):
    """The public answering form, built for one survey and one link."""

    def __init__(self, *args, survey, activities, ask_department: bool, ask_name: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.survey, self.activities = survey, list(activities)
        if ask_name:
            self.fields["respondent_name"] = forms.CharField(max_length=150, required=False, label="Your name")
        if ask_department:
            self.fields["department"] = forms.ChoiceField(
                choices=[("", "Choose your department")] + list(Department.choices), label="Your department"
            )
        self.fields["answer"] = forms.CharField(
            max_length=5000,
            widget=forms.Textarea(attrs={"rows": 4}),
            label=survey.question,
            error_messages={"required": "Tell us in your own words: this is the heart of the survey."},
        )
        for activity in self.activities:
            self.fields[self.rating_field(activity)] = forms.ChoiceField(
                choices=RATING_CHOICES,
                widget=forms.RadioSelect,
                label=str(activity),
                help_text=activity.description,
                error_messages={"required": "Pick a rating from 0 to 10, or “Not relevant”."},
            )
        if survey.allow_proposals:
            for i in range(PROPOSAL_ROWS):
                self.fields[f"proposal_name_{i}"] = forms.CharField(max_length=100, required=False, label="Activity")
                self.fields[f"proposal_description_{i}"] = forms.CharField(
                    max_length=500, required=False, label="What the user does"
                )
                self.fields[f"proposal_importance_{i}"] = forms.ChoiceField(
                    choices=PROPOSAL_RATING_CHOICES, required=False, label="Importance"
                )
        self.fields["comment"] = forms.CharField(
            max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Anything else? (optional)"
        )

    @staticmethod
    def rating_field(activity) -> str:
        return f"rating_{activity.public_id.hex}"

    def rating_fields(self):
        return [self[self.rating_field(a)] for a in self.activities]

    def proposal_rows(self):
        if not self.survey.allow_proposals:
            return []
        return [
            (self[f"proposal_name_{i}"], self[f"proposal_description_{i}"], self[f"proposal_importance_{i}"])
            for i in range(PROPOSAL_ROWS)
        ]

    def clean(self):
        data = super().clean()
        for i in range(PROPOSAL_ROWS if self.survey.allow_proposals else 0):
            name = data.get(f"proposal_name_{i}", "").strip()
            if not name and (data.get(f"proposal_description_{i}") or data.get(f"proposal_importance_{i}")):
                self.add_error(f"proposal_name_{i}", "Give the activity a name, or clear this row.")
        return data

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        ratings = {}
        for activity in self.activities:
            value = data[self.rating_field(activity)]
            ratings[activity.pk] = None if value == NOT_RELEVANT else int(value)
        proposals = []
        for i in range(PROPOSAL_ROWS if self.survey.allow_proposals else 0):
            name = data.get(f"proposal_name_{i}", "").strip()
            if name:
                importance = data.get(f"proposal_importance_{i}")
                proposals.append(
                    Proposal(
                        name=name,
                        description=data.get(f"proposal_description_{i}", ""),
                        importance=int(importance) if importance else None,
                    )
                )
        return {
            "department": data.get("department", ""),
            "answer": data["answer"],
            "ratings": ratings,
            "proposals": proposals,
            "comment": data.get("comment", ""),
            "respondent_name": data.get("respondent_name", ""),
        }


def initial_from_response(form_class_activities, response) -> dict:
    """Pre-fill the form from a response being edited."""
    initial = {"department": response.department, "answer": response.answer, "comment": response.comment}
    initial["respondent_name"] = response.respondent_name
    by_activity = {r.activity_id: r.importance for r in response.ratings.all()}
    for activity in form_class_activities:
        if activity.pk in by_activity:
            value = by_activity[activity.pk]
            initial[AnswerForm.rating_field(activity)] = NOT_RELEVANT if value is None else str(value)
    for i, proposal in enumerate(response.proposals.all()[:PROPOSAL_ROWS]):
        initial[f"proposal_name_{i}"] = proposal.name
        initial[f"proposal_description_{i}"] = proposal.description
        initial[f"proposal_importance_{i}"] = "" if proposal.importance is None else str(proposal.importance)
    return initial
