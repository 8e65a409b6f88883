"""The admin's registration form: a server path or an uploaded zip of a bundle directory."""

from __future__ import annotations

from django import forms
from django.conf import settings


class RegisterForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, help_text="a label for people")
    path = forms.CharField(
        max_length=500, required=False, help_text="a bundle directory on the server"
    )
    bundle_zip = forms.FileField(
        required=False, help_text="or a zip of the bundle directory (manifest.json and its files)"
    )

    def clean(self):
        data = super().clean()
        if bool(data.get("path")) == bool(data.get("bundle_zip")):
            raise forms.ValidationError("Give either a server path or a zip, not both or neither.")
        upload = data.get("bundle_zip")
        if upload is not None and upload.size > settings.MODEL_UPLOAD_MAX_BYTES:
            raise forms.ValidationError(
                f"The zip is larger than {settings.MODEL_UPLOAD_MAX_BYTES} bytes."
            )
        return data
