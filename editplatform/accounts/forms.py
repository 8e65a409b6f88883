from django import forms


class TokenForm(forms.Form):
    token = forms.RegexField(
        regex=r"^\d{6}$", max_length=6, min_length=6,
        error_messages={"invalid": "Enter the 6-digit code from your authenticator app."},
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )
