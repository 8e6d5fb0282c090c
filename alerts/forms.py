from django import forms

from accounts.models import Membership, User

from . import safety
from .models import ActionKind, AlertRule, WebhookEndpoint
from .services import RULE_FIELDS


def _members(tenant):
    ids = Membership.objects.for_tenant(tenant).values_list("user_id", flat=True)
    return User.objects.filter(pk__in=list(ids)).order_by("email")


class MemberChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.get_full_name()} <{obj.email}>" if obj.full_name else obj.email


class MembersChoice(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        return MemberChoice.label_from_instance(self, obj)


class RuleForm(forms.ModelForm):
    """A rule's trigger and filters, plus its actions (webhook endpoint, Slack URL, emails)."""

    webhook = forms.ModelChoiceField(queryset=WebhookEndpoint.objects.none(), required=False,
                                     label="Webhook endpoint", empty_label="— no webhook —")
    slack_url = forms.CharField(required=False, label="Slack incoming-webhook URL", max_length=500,
                                help_text="https://hooks.slack.com/services/… (leave blank to keep the saved one)")
    slack_clear = forms.BooleanField(required=False, label="Remove the Slack action")
    email_owner = forms.BooleanField(required=False, label="Email the owner of the account or user")
    email_members = MembersChoice(queryset=User.objects.none(), required=False, label="Email these members",
                                  widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = AlertRule
        fields = list(RULE_FIELDS)
        labels = {"tier_from": "Tier changed from", "tier_to": "Tier changed to", "percent": "By (%)",
                  "days": "Days (N)", "filter_plan": "Only plan", "filter_owner": "Only owner",
                  "filter_trait_key": "Only with trait", "filter_trait_value": "…equal to",
                  "filter_segment": "Only signup cohort"}
        help_texts = {"days": "For “points fell/rose” and “no event for N days”.",
                      "percent": "For “points fell/rose”.",
                      "filter_trait_value": "Blank: any value of the trait."}

    def __init__(self, *args, tenant, rule=None, **kwargs):
        super().__init__(*args, instance=rule, **kwargs)
        self.tenant = tenant
        self.fields["webhook"].queryset = WebhookEndpoint.objects.for_tenant(tenant)
        members = _members(tenant)
        self.fields["email_members"].queryset = members
        self.fields["filter_owner"] = MemberChoice(queryset=members, required=False, label="Only owner",
                                                   empty_label="— any owner —")
        self.saved_slack = ""
        if rule is not None and rule.pk and not self.is_bound:
            for action in rule.actions.all():
                if action.kind == ActionKind.WEBHOOK:
                    self.fields["webhook"].initial = action.endpoint_id
                elif action.kind == ActionKind.EMAIL:
                    self.fields["email_owner"].initial = action.email_owner
                    self.fields["email_members"].initial = action.email_user_ids
        if rule is not None and rule.pk:
            slack = rule.actions.filter(kind=ActionKind.SLACK).first()
            self.saved_slack = slack.slack_url if slack else ""
            if self.saved_slack:
                self.fields["slack_url"].help_text = f"Saved: {slack.target_label}. Leave blank to keep it."

    def clean_slack_url(self):
        url = self.cleaned_data["slack_url"].strip()
        if url:
            try:
                safety.check_url(url)
            except safety.UnsafeTarget as error:
                raise forms.ValidationError(str(error)) from None
        return url

    def actions(self) -> list[dict]:
        data, out = self.cleaned_data, []
        if data.get("webhook"):
            out.append({"kind": ActionKind.WEBHOOK, "endpoint": data["webhook"]})
        slack = data.get("slack_url") or ("" if data.get("slack_clear") else self.saved_slack)
        if slack:
            out.append({"kind": ActionKind.SLACK, "slack_url": slack})
        if data.get("email_owner") or data.get("email_members"):
            out.append({"kind": ActionKind.EMAIL, "email_owner": data.get("email_owner"),
                        "email_user_ids": [u.pk for u in data.get("email_members") or []]})
        return out

    def clean(self):
        data = super().clean()
        if not self.errors and not self.actions():
            raise forms.ValidationError("Give the rule at least one action: a webhook, a Slack URL or an email.")
        return data

    def rule_fields(self) -> dict:
        return {name: self.cleaned_data[name] for name in RULE_FIELDS}


class EndpointForm(forms.Form):
    name = forms.CharField(max_length=100)
    url = forms.CharField(label="URL", max_length=500, help_text="https://… Your server gets a signed POST per alert.")

    def clean_url(self):
        url = self.cleaned_data["url"].strip()
        try:
            forms.URLField().clean(url) if url.startswith(("http://", "https://")) else None
            safety.check_url(url)
        except safety.UnsafeTarget as error:
            raise forms.ValidationError(str(error)) from None
        return url
