"""Forms for the 2FA pages and the admin's account and key pages."""

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from editplatform.accounts.roles import INTEGRATION, ROLE_NAMES


class TokenForm(forms.Form):
    token = forms.RegexField(
        regex=r"^\d{6}$",
        max_length=6,
        min_length=6,
        error_messages={"invalid": "Enter the 6-digit code from your authenticator app."},
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


class EnrolmentCodeForm(forms.Form):
    enrolment_code = forms.CharField(
        max_length=64,
        strip=True,
        help_text="The one-time enrolment code an administrator gave you.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "autofocus": True}),
    )


class RoleGroupsMixin:
    """Admin user forms: only role groups are offered, and the role rules are checked
    in clean() so a refusal is a form error, not a 500 from the m2m guard."""

    request_user = None

    def _limit_groups(self):
        if "groups" in self.fields:
            self.fields["groups"].queryset = Group.objects.filter(name__in=ROLE_NAMES).order_by(
                "name"
            )
            self.fields["groups"].help_text = "Roles. Integration accounts hold only 'integration'."

    def clean(self):
        from editplatform.accounts.services import AccountError, check_roles

        cleaned = super().clean()
        groups = cleaned.get("groups")
        if groups is not None:
            user = (
                self.instance
                if self.instance.pk
                else get_user_model()(username=cleaned.get("username") or "")
            )
            try:
                check_roles(user, {g.name for g in groups}, by=self.request_user)
            except AccountError as exc:
                self.add_error("groups", str(exc))
        return cleaned


class IntegrationKeyAdminForm(forms.ModelForm):
    """A key for a person is a form error naming the problem (it used to answer 500)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "service_account" in self.fields:
            self.fields["service_account"].queryset = (
                get_user_model().objects.filter(groups__name=INTEGRATION.name).order_by("username")
            )

    def clean_service_account(self):
        from editplatform.accounts.services import AccountError, check_key_account

        account = self.cleaned_data["service_account"]
        try:
            check_key_account(account)
        except AccountError as exc:
            raise forms.ValidationError(str(exc)) from None
        return account

    def clean_jobs_per_hour(self):
        value = self.cleaned_data.get("jobs_per_hour")
        if value is not None and value < 1:
            raise forms.ValidationError("jobs per hour must be at least 1 (or empty for unlimited)")
        return value
