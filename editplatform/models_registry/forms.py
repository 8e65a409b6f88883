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


class PocForm(forms.Form):
    """A proof-of-concept run: a zip of photos, a registered model version, a price."""

    version = forms.ModelChoiceField(
        queryset=None,
        to_field_name="version",
        empty_label=None,
        help_text="the registered model version to measure",
    )
    gpu_hour_price = forms.DecimalField(
        min_value=0,
        max_value=100000,
        decimal_places=4,
        initial="2.50",
        label="GPU-hour price",
        help_text="what one hour of the worker's hardware costs (for the cost per 1,000 images)",
    )
    photos = forms.FileField(
        help_text="a zip of JPEG, PNG or WebP photos (folders inside are fine)",
    )

    def __init__(self, *args, **kwargs):
        from editplatform.models_registry.poc_runs import usable_versions

        super().__init__(*args, **kwargs)
        self.fields["version"].queryset = usable_versions()
        self.fields["photos"].help_text += (
            f"; at most {settings.POC_MAX_IMAGES} photos and "
            f"{settings.POC_UPLOAD_MAX_BYTES // (1024 * 1024)} MiB"
        )

    def clean_photos(self):
        upload = self.cleaned_data["photos"]
        if upload.size > settings.POC_UPLOAD_MAX_BYTES:
            raise forms.ValidationError(
                f"The zip is {upload.size} bytes; at most {settings.POC_UPLOAD_MAX_BYTES} "
                "are accepted."
            )
        return upload
