"""Item 4: the catalog speaks plainly and strengths arrive exactly as chosen.

Unit checks of the catalog's optional fields (old catalogs still load), the form's
choice of edits and consent wording, and in Chromium: the number box, the slider kept in
sync by new_job.js, the "Recommended" button, and the job recording that exact value.
"""

from __future__ import annotations

import pytest

from editplatform.jobs.forms import GENERIC_CONSENT, NewJobForm, consent_wording
from editplatform.jobs.models import EditJob
from editplatform.jobs.states import State
from inversion.editing.catalog import EditCatalog, EditSpec
from inversion.errors import EditError
from tests import catalog
from tests.jobs import images
from tests.portal.conftest import person, sign_in

OLD_ENTRY = {
    "name": "component_0",
    "description": "Unsupervised GANSpace principal component 0 of W.",
    "direction": "ganspace_pc0",
    "space": "w",
    "layers": None,
    "min_strength": -3.0,
    "max_strength": 3.0,
    "default_strength": 1.0,
    "sensitive": True,
}


def test_old_catalog_entries_load_with_derived_display_fields():
    spec = EditSpec.from_dict(OLD_ENTRY)
    assert spec.label == "Component 0"
    assert spec.technical_detail == OLD_ENTRY["description"]
    long = EditSpec.from_dict(
        {
            **OLD_ENTRY,
            "description": "Makes it darker (negative); keeps shape.\nMeasured on 1000 images.",
        }
    )
    assert long.summary == "Makes it darker (negative)."
    assert long.technical_detail == long.description
    assert spec.to_dict() == OLD_ENTRY  # nothing new written for an old entry
    assert not spec.offered_to_staff  # an unnamed GANSpace component


def test_named_entries_round_trip_and_a_named_component_is_offered():
    spec = EditSpec.from_dict(
        {
            **OLD_ENTRY,
            "display_name": "Overall shape",
            "technical": "GANSpace PC0 of W, 10.8 % of the variance",
        }
    )
    assert spec.label == "Overall shape" and spec.offered_to_staff
    assert EditSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(EditError, match="display_name must be a string"):
        EditSpec.from_dict({**OLD_ENTRY, "display_name": 3})


def test_catalog_subject_kind_round_trips_and_defaults_to_none():
    plain = EditCatalog.from_dict({"edits": [OLD_ENTRY]})
    assert plain.subject_kind == "" and "subject_kind" not in plain.to_dict()
    people = EditCatalog.from_dict({"subject_kind": "person", "edits": [OLD_ENTRY]})
    assert EditCatalog.from_json(people.to_json()).subject_kind == "person"
    with pytest.raises(EditError, match="subject_kind"):
        EditCatalog.from_dict({"subject_kind": ["person"], "edits": []})


def test_form_offers_named_edits_and_words_consent_by_the_bundles_domain():
    smile = EditSpec(
        name="smile",
        description="Adds a smile.",
        direction="interfacegan_smile",
        display_name="Smile",
        technical="InterFaceGAN boundary, all layers",
    )
    hidden = EditSpec.from_dict(OLD_ENTRY)
    form = NewJobForm(catalog=EditCatalog([smile, hidden], subject_kind="person"))
    assert [spec.name for spec in form.edit_specs] == ["smile"]
    assert "edit_component_0" not in form.fields
    assert form.fields["consent"].label == consent_wording("person")
    assert "person shown" in form.fields["consent"].label
    widget = form.fields["edit_smile"].widget
    assert widget.input_type == "number" and widget.attrs["step"] == "any"
    assert (
        "product photo"
        in NewJobForm(catalog=EditCatalog([smile], subject_kind="product")).fields["consent"].label
    )
    assert NewJobForm(catalog=EditCatalog([smile])).fields["consent"].label == GENERIC_CONSENT
    assert (
        NewJobForm(catalog=EditCatalog([smile], subject_kind="galaxies")).fields["consent"].label
        == GENERIC_CONSENT
    )


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_recommended_strength_is_submitted_exactly(live_server, page, model_bundle, tmp_path):
    requester = person("stella", "requester")
    photo = tmp_path / "item.jpg"
    photo.write_bytes(images.jpeg((96, 96)))
    sign_in(page, live_server, requester)
    page.goto(f"{live_server.url}/jobs/new/")
    offered = [spec for spec in catalog.catalog() if spec.offered_to_staff]
    assert page.locator("input.edit-slider").count() == len(offered)
    for spec in catalog.catalog():
        assert (page.locator(f"#id_edit_{spec.name}").count() == 1) == spec.offered_to_staff
    label = page.locator("#consent-label").inner_text().strip()
    assert label == consent_wording(catalog.catalog().subject_kind)
    # Plain words first, the model's detail behind a disclosure.
    spec = catalog.sensitive()
    row = page.locator(f'.slider-row[data-edit="{spec.name}"]')
    assert row.locator("label").first.inner_text().startswith(spec.label)
    assert row.locator(".edit-description").inner_text() == spec.summary
    assert not row.locator("details.technical p").first.is_visible()
    row.locator("details.technical summary").click()
    assert row.locator("details.technical p").first.inner_text() == spec.technical_detail
    # "Recommended" puts the catalog's strength in the box exactly, and the slider follows.
    row.locator("button.recommend").click()
    box = page.locator(f"#id_edit_{spec.name}")
    assert float(box.input_value()) == spec.default_strength
    assert (
        float(page.locator(f"#slider_id_edit_{spec.name}").input_value()) == spec.default_strength
    )
    # Typing in the box moves the slider; dragging the slider rounds into the box.
    box.fill("1.37")
    assert float(page.locator(f"#slider_id_edit_{spec.name}").input_value()) == 1.37
    page.locator(f"#slider_id_edit_{spec.name}").evaluate(
        "el => { el.value = '0.123456'; el.dispatchEvent(new Event('input', {bubbles: true})); }"
    )
    assert box.input_value() == "0.12"
    row.locator("button.recommend").click()
    page.set_input_files("#id_image", str(photo))
    page.fill("#id_purpose", "Exact recommended strength, as the catalog says")
    page.check("#id_consent")
    page.click("#submit-job")
    page.wait_for_url("**/jobs/*/")
    job = EditJob.objects.get()
    assert job.edits == {spec.name: spec.default_strength}  # not 1.98 for 2.0
    assert job.needs_approval and job.state != State.SUCCEEDED
