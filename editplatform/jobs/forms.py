"""The portal's new-job form: image, one slider per catalog edit, purpose, consent.

The form only shapes the input; the rules (edit ranges, purpose, consent, image
checks) are the services' and uploads' so the portal and the API agree exactly.
"""

from __future__ import annotations

from django import forms

from editplatform.jobs.services import PURPOSE_MAX, PURPOSE_MIN

EDIT_PREFIX = "edit_"


class RangeInput(forms.NumberInput):
    input_type = "range"


class NewJobForm(forms.Form):
    image = forms.FileField(
        label="Photo", help_text="JPEG, PNG or WebP",
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )
    purpose = forms.CharField(
        min_length=PURPOSE_MIN, max_length=PURPOSE_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Why is this edit needed? (recorded in the audit log)"}),
    )
    consent = forms.BooleanField(
        required=True, label="I confirm that the person shown has consented to this edit of their photo.",
    )

    def __init__(self, *args, catalog=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.edit_specs = list(catalog or [])
        for spec in self.edit_specs:
            step = (spec.max_strength - spec.min_strength) / 100
            self.fields[EDIT_PREFIX + spec.name] = forms.FloatField(
                label=spec.name.replace("_", " ").capitalize(), required=False,
                # Every slider starts at "no change"; the catalog's default strength is the
                # recommended amount once someone chooses the edit, shown as a hint.
                min_value=spec.min_strength, max_value=spec.max_strength, initial=neutral_strength(spec),
                help_text=spec.description,
                widget=RangeInput(attrs={
                    "min": f"{spec.min_strength:g}", "max": f"{spec.max_strength:g}", "step": f"{step:g}",
                    "class": "edit-slider", "data-sensitive": "true" if spec.sensitive else "false",
                    "data-recommended": f"{spec.default_strength:g}",
                }),
            )

    def edit_fields(self):
        return [(self[EDIT_PREFIX + spec.name], spec) for spec in self.edit_specs]

    def requested_edits(self) -> dict[str, float]:
        return {
            spec.name: self.cleaned_data.get(EDIT_PREFIX + spec.name) or 0.0 for spec in self.edit_specs
        }


def neutral_strength(spec) -> float:
    """0 (no change) when the range allows it, else the bound closest to it."""
    return min(max(0.0, spec.min_strength), spec.max_strength)
