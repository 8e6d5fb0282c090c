import zoneinfo

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm

from core.sql import TRAIT_KEY

from .models import ApiKeyKind, Department, Role, Tenant, User

TIME_ZONE_CHOICES = [(tz, tz) for tz in sorted(zoneinfo.available_timezones())]


class TimeZoneField(forms.ChoiceField):
    def __init__(self, **kwargs):
        kwargs.setdefault("choices", TIME_ZONE_CHOICES)
        kwargs.setdefault("initial", "UTC")
        kwargs.setdefault("help_text", "A “day” in your scores is a day in this time zone.")
        super().__init__(**kwargs)


class PasswordMixin:
    """Runs Django's password validators with the form's other fields as context."""

    def clean_password(self):
        password = self.cleaned_data["password"]
        user = User(email=self.cleaned_data.get("email", ""), full_name=self.cleaned_data.get("full_name", ""))
        password_validation.validate_password(password, user)
        return password


class SignupForm(PasswordMixin, forms.Form):
    full_name = forms.CharField(max_length=150, label="Your name")
    email = forms.EmailField(label="Work email")
    password = forms.CharField(widget=forms.PasswordInput, strip=False, help_text="At least 8 characters.")
    company_name = forms.CharField(max_length=100)
    product_name = forms.CharField(max_length=100, help_text="The product whose users you want to measure.")
    time_zone = TimeZoneField()

    field_order = ["full_name", "email", "company_name", "product_name", "time_zone", "password"]

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this email exists already. Log in instead.")
        return email


class LoginForm(AuthenticationForm):
    username = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autofocus": True}))


class TenantCreateForm(forms.Form):
    company_name = forms.CharField(max_length=100)
    product_name = forms.CharField(max_length=100)
    time_zone = TimeZoneField()


class TenantSettingsForm(forms.ModelForm):
    # Like Mixpanel's project time zone: events are filed under their day when they
    # arrive, so a change applies from then on (rewriting history would shift every score).
    time_zone = TimeZoneField(
        help_text="A day in scores is a day in this zone. A change applies to events received from then on; "
        "days already stored keep the zone they were received in."
    )

    class Meta:
        model = Tenant
        fields = ["name", "product_name", "time_zone", "events_retention_months"]


class RiskSettingsForm(forms.ModelForm):
    """What makes an account or end user "at risk" here (insights/queries/risk.py)."""

    class Meta:
        model = Tenant
        fields = ["risk_days", "risk_points_drop", "risk_tier_drop", "risk_silent_days", "risk_silent_share",
                  "risk_gap_factor"]


class OwnerTraitsForm(forms.ModelForm):
    """Which traits set owners and renewal dates when they arrive (events/owners.py)."""

    class Meta:
        model = Tenant
        fields = ["owner_trait", "renewal_trait"]

    def _trait(self, name):
        value = self.cleaned_data[name].strip()
        if value and not TRAIT_KEY.match(value):
            raise forms.ValidationError("Use up to 64 letters, digits, spaces, “_” or “-”.")
        return value

    def clean_owner_trait(self):
        return self._trait("owner_trait")

    def clean_renewal_trait(self):
        return self._trait("renewal_trait")


class TenantDeleteForm(forms.Form):
    confirm_name = forms.CharField(label="Type the company name to confirm", max_length=100)

    def __init__(self, *args, tenant: Tenant, **kwargs):
        self.tenant = tenant
        super().__init__(*args, **kwargs)

    def clean_confirm_name(self):
        value = self.cleaned_data["confirm_name"].strip()
        if value != self.tenant.name:
            raise forms.ValidationError(f"Type “{self.tenant.name}” exactly to delete this workspace.")
        return value


class InviteForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)
    department = forms.ChoiceField(choices=Department.choices, initial=Department.OTHER)

    def __init__(self, *args, role_choices=None, **kwargs):
        super().__init__(*args, **kwargs)
        if role_choices is not None:
            self.fields["role"].choices = role_choices


class MembershipForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
    department = forms.ChoiceField(choices=Department.choices)


class AcceptInvitationForm(PasswordMixin, forms.Form):
    full_name = forms.CharField(max_length=150, label="Your name")
    password = forms.CharField(widget=forms.PasswordInput, strip=False, help_text="At least 8 characters.")

    def __init__(self, *args, email: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email

    def clean_password(self):
        self.cleaned_data.setdefault("email", self.email)
        return super().clean_password()


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Where the key is used, e.g. “Web app (browser)” or “Backend”.")
    kind = forms.ChoiceField(choices=ApiKeyKind.choices, widget=forms.RadioSelect, initial=ApiKeyKind.WRITE)
