"""The portal's new-job form: image, one slider per catalog edit, purpose, consent.

The form only shapes the input (text to numbers, a checkbox to a boolean); every rule
(edit names and ranges, purpose, consent, image checks) is the one in
:func:`editplatform.jobs.services.submit`, so the portal and the API agree exactly.
The HTML attributes (slider ranges, lengths) only guide the person filling it in.

Each edit is a number box (the value sent, exact to what is typed: a slider's steps made
a recommended 2.0 arrive as 1.98) with a slider beside it that new_job.js keeps in sync.
Edits staff cannot understand (unnamed GANSpace components) are not offered here.
"""

from __future__ import annotations

from django import forms

from editplatform.jobs.services import PURPOSE_MAX, PURPOSE_MIN

EDIT_PREFIX = "edit_"


# The consent line names what the bundle's photos show; a bundle that says nothing gets
# wording that fits any photo.
CONSENT_WORDING = {
    "person": "I confirm that the person shown has consented to this edit of their photo.",
    "product": "I confirm that we hold the rights to this product photo and may edit it.",
}
GENERIC_CONSENT = (
    "I confirm that we hold the rights to this photo and that anyone shown in it "
    "has consented to this edit."
)


def consent_wording(subject_kind: str) -> str:
    return CONSENT_WORDING.get((subject_kind or "").strip().lower(), GENERIC_CONSENT)


class NewJobForm(forms.Form):
    image = forms.FileField(
        label="Photo",
        help_text="JPEG, PNG or WebP",
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )
    purpose = forms.CharField(
        required=False,
        widget=forms.Textarea(
            attrs={
                "rows": 3,
                "minlength": PURPOSE_MIN,
                "maxlength": PURPOSE_MAX,
                "placeholder": "Why is this edit needed? (recorded in the audit log)",
            }
        ),
    )
    resubmit_from = forms.UUIDField(required=False, widget=forms.HiddenInput)
    # Passed through as typed: services.submit validates it (clean_quality), like the API.
    quality = forms.ChoiceField(
        label="Quality",
        required=False,
        initial="fast",
        choices=[
            ("fast", "Fast: the model's first result (seconds)"),
            ("refine", "Refine: a closer likeness of your photo, computed longer"),
        ],
        widget=forms.RadioSelect,
    )
    consent = forms.BooleanField(
        required=False,
        label=GENERIC_CONSENT,
    )

    def __init__(self, *args, catalog=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.edit_specs = offered_specs(catalog or [])
        self.fields["consent"].label = consent_wording(getattr(catalog, "subject_kind", ""))
        for spec in self.edit_specs:
            self.fields[EDIT_PREFIX + spec.name] = forms.CharField(
                label=spec.label,
                required=False,
                # Every edit starts at "no change"; the catalog's default strength is the
                # recommended amount once someone chooses the edit (the "Recommended" button).
                initial=f"{neutral_strength(spec):g}",
                help_text=spec.summary,
                widget=forms.NumberInput(
                    attrs={
                        "min": f"{spec.min_strength:g}",
                        "max": f"{spec.max_strength:g}",
                        "step": "any",
                        "class": "edit-strength",
                        "inputmode": "decimal",
                        "data-sensitive": "true" if spec.sensitive else "false",
                        "data-recommended": f"{spec.default_strength:g}",
                    }
                ),
            )

    @classmethod
    def neutral_data(cls, catalog) -> dict[str, str]:
        """Form data with every slider at "no change" (a bound form that was never filled in)."""
        return {
            EDIT_PREFIX + spec.name: f"{neutral_strength(spec):g}"
            for spec in offered_specs(catalog)
        }

    def edit_fields(self):
        return [(self[EDIT_PREFIX + spec.name], spec) for spec in self.edit_specs]

    def requested_edits(self) -> dict[str, object]:
        """{edit name: strength} of the sliders that were sent; text that is not a number is
        passed on as it is, for the service to refuse by name."""
        edits: dict[str, object] = {}
        for spec in self.edit_specs:
            raw = (self.cleaned_data.get(EDIT_PREFIX + spec.name) or "").strip()
            if not raw:
                continue
            try:
                edits[spec.name] = float(raw)
            except ValueError:
                edits[spec.name] = raw
        return edits


def offered_specs(catalog) -> list:
    """The edits the portal offers: all but unnamed GANSpace components."""
    return [spec for spec in catalog if spec.offered_to_staff]


def neutral_strength(spec) -> float:
    """0 (no change) when the range allows it, else the bound closest to it."""
    return min(max(0.0, spec.min_strength), spec.max_strength)
