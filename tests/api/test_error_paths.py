"""Every error path of the jobs API answers 4xx JSON in the one {detail, code, field} shape.

Explicit cases reproduce the inputs that answered 500 (an impossible date in a list
filter, a forged cursor, `edits` nested ten thousand levels deep, numbers beyond any
float) and hypothesis drives the list filters and the JSON and multipart bodies with
arbitrary values, asserting that nothing answers 5xx and nothing is stored.
"""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from editplatform.jobs.models import EditJob
from tests import catalog
from tests.api.conftest import assert_error_shape
from tests.jobs import images

pytestmark = pytest.mark.django_db

PURPOSE = "Product photo retouch for the spring campaign"
DEEP = 10_000
FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def cursor(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def post_json(client, body, **extra):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.generic("POST", "/api/v1/jobs", data, content_type="application/json", **extra)


def post_form(client, *, edits, image=None, purpose=PURPOSE, consent="true"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = {
        "image": SimpleUploadedFile("p.png", image or images.png()),
        "edits": edits,
        "purpose": purpose,
        "consent": consent,
    }
    return client.post("/api/v1/jobs", data, format="multipart")


BAD_LIST_PARAMETERS = [
    ({"created_after": "2026-02-30"}, "created_after"),
    ({"created_before": "2026-13-01"}, "created_before"),
    ({"created_after": "2026-01-01T25:61:00"}, "created_after"),
    ({"created_after": "2026-01-01T10:00:00+99:00"}, "created_after"),
    ({"created_after": "0001-01-01T00:00:00+23:00"}, "created_after"),  # before year 1 in UTC
    ({"created_before": "2026-01-01T10:00:00Z\x00"}, "created_before"),
    ({"created_after": "yesterday"}, "created_after"),
    ({"state": "queued,\x00"}, "state"),
    ({"cursor": "not base64 at all!"}, "cursor"),
    ({"cursor": cursor("o=1&r=0&p=not-a-date")}, "cursor"),
    ({"cursor": cursor("p=2026-02-30 10:00:00+00:00")}, "cursor"),
    ({"cursor": cursor("p=2026-01-01 10:00:00")}, "cursor"),  # naive: not one we wrote
    ({"cursor": cursor("o=99999999999999999999999&p=x")}, "cursor"),
    ({"cursor": cursor("p=\x00")}, "cursor"),
    ({"cursor": cursor("p=0001-01-01 00:00:00+23:00")}, "cursor"),
]


@pytest.mark.parametrize("params, field", BAD_LIST_PARAMETERS)
def test_bad_list_parameters_are_400_naming_the_parameter(key_client, params, field):
    body = assert_error_shape(key_client.get("/api/v1/jobs", params), 400)
    assert body["field"] == field and body["code"] in {"invalid", "invalid_cursor"}


@pytest.mark.embedded
def test_bad_list_parameters_are_400_on_the_embedded_database_too(key_client):
    for params, field in BAD_LIST_PARAMETERS:
        assert assert_error_shape(key_client.get("/api/v1/jobs", params), 400)["field"] == field, (
            params
        )


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/jobs/not-a-uuid",
        "/api/v1/jobs/1e999/cancel",
        "/api/v1/nope",
        "/api/v1/jobs/00000000-0000-0000-0000-000000000000/artifacts/nope",
        "/api/v1/jobs/00000000-0000-0000-0000-000000000000",
    ],
)
def test_unknown_api_paths_are_404_json(key_client, path):
    assert assert_error_shape(key_client.get(path), 404)["code"] == "not_found"


def test_unknown_portal_paths_are_still_a_page(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_impossible_dates_name_the_problem(key_client):
    body = assert_error_shape(key_client.get("/api/v1/jobs", {"created_after": "2026-02-30"}), 400)
    assert "2026-02-30" in body["detail"] and "day is out of range" in body["detail"]


def test_a_cursor_the_api_returned_still_works(key_client, model_bundle):
    for seed in range(3):
        assert (
            post_form(
                key_client, edits=catalog.request_json(), image=images.png(seed=seed)
            ).status_code
            == 201
        )
    first = key_client.get("/api/v1/jobs", {"page_size": 2}).json()
    assert len(first["results"]) == 2 and first["next_cursor"] and first["previous_cursor"] is None
    second = key_client.get("/api/v1/jobs", {"page_size": 2, "cursor": first["next_cursor"]}).json()
    assert (
        len(second["results"]) == 1 and second["next_cursor"] is None and second["previous_cursor"]
    )
    assert {j["id"] for j in first["results"]}.isdisjoint({j["id"] for j in second["results"]})


@pytest.mark.parametrize(
    "body",
    [
        '{"edits": ' + "[" * DEEP + "]" * DEEP + "}",
        '{"edits": ' + '{"a": ' * DEEP + "1" + "}" * DEEP + "}",
        "[" * DEEP + "]" * DEEP,
        '{"edits": {"x": ' + "[" * 40 + "]" * 40 + "}}",  # deeper than the body ever needs
    ],
    ids=["arrays", "objects", "bare", "forty"],
)
def test_deeply_nested_json_bodies_are_400(key_client, model_bundle, body):
    response = post_json(key_client, body)
    assert assert_error_shape(response, 400)["code"] == "parse_error"
    assert "nested deeper" in response.json()["detail"]


@pytest.mark.parametrize(
    "edits",
    [
        "[" * DEEP + "]" * DEEP,
        '{"a": ' * DEEP + "1" + "}" * DEEP,
        '{"%s": ' + "[" * 900 + "]" * 900 + "}",  # parses, then must not crash describing it
        '{"%s": ' + "9" * 4000 + "}",  # an int beyond float range
        '{"%s": ' + "9" * 5000 + "}",  # beyond Python's int parsing limit
        '{"%s": 1e999}',
        '{"%s": NaN}',
        '{"%s": "1.0"}',
        '{"%s": true}',
        '{"%s": null}',
        "[1, 2]",
        '"text"',
        "{not json",
    ],
)
def test_hostile_edits_in_a_multipart_form_are_400(key_client, model_bundle, edits):
    if "%s" in edits:
        edits = edits.replace("%s", catalog.plain().name, 1)
    body = assert_error_shape(post_form(key_client, edits=edits), 400)
    assert body["field"] == "edits"
    assert not EditJob.objects.exists()


@pytest.mark.parametrize(
    "value", ["9" * 4000, "1e999", "-1e999", "-1e308", '"1.0"', "true", "null", "[1]", '{"a": 1}']
)
def test_hostile_strengths_in_a_json_body_are_400(key_client, model_bundle, value):
    body = json.dumps(
        {
            "image_base64": base64.b64encode(images.png()).decode(),
            "purpose": PURPOSE,
            "consent": True,
            "edits": {catalog.plain().name: "VALUE"},
        }
    ).replace('"VALUE"', value)
    assert assert_error_shape(post_json(key_client, body), 400)["field"] == "edits"
    assert not EditJob.objects.exists()


@pytest.mark.parametrize(
    "body, status, field",
    [
        ([1, 2, 3], 400, None),
        ("just a string", 400, None),
        (None, 400, None),
        ({"edits": {}, "purpose": PURPOSE, "consent": True}, 400, "image_base64"),
        (
            {"image_base64": 12345, "edits": {}, "purpose": PURPOSE, "consent": True},
            400,
            "image_base64",
        ),
        (
            {"image_base64": "***not base64***", "edits": {}, "purpose": PURPOSE, "consent": True},
            400,
            "image_base64",
        ),
        (
            {
                "image_base64": base64.b64encode(b"%PDF-1.4 nope").decode(),
                "edits": {},
                "purpose": PURPOSE,
                "consent": True,
            },
            415,
            "image",
        ),
        (
            {
                "image_base64": base64.b64encode(images.png()).decode(),
                "edits": "[]",
                "purpose": PURPOSE,
                "consent": True,
            },
            400,
            "edits",
        ),
        (
            {
                "image_base64": base64.b64encode(images.png()).decode(),
                "edits": {},
                "purpose": ["x"] * 20,
                "consent": True,
            },
            400,
            "purpose",
        ),
        (
            {
                "image_base64": base64.b64encode(images.png()).decode(),
                "edits": {},
                "purpose": PURPOSE,
                "consent": {"yes": True},
            },
            400,
            "consent",
        ),
    ],
)
def test_wrong_types_in_a_json_body_are_4xx(key_client, model_bundle, body, status, field):
    result = assert_error_shape(post_json(key_client, body), status)
    assert result.get("field") == field
    assert not EditJob.objects.exists()


def test_a_json_body_from_someone_who_may_not_submit_is_403_before_anything_is_decoded(make_person):
    from tests.conftest import api_client_for

    reviewer = api_client_for(make_person("reviewer"))
    body = {"image_base64": "***not base64***", "edits": {}, "purpose": PURPOSE, "consent": True}
    assert assert_error_shape(post_json(reviewer, body), 403)["code"] == "forbidden"


def test_json_size_limits_apply_before_decoding(key_client, model_bundle, settings):
    settings.UPLOAD_MAX_BYTES = 4096
    # a declared body too long for any image within the limit: refused before it is parsed
    unparsable = "x" * (4 * 4096 // 3 + 64 * 1024 + 1024)
    assert assert_error_shape(post_json(key_client, unparsable), 413)["code"] == "file_too_large"
    # base64 text longer than the limit's encoding: refused before it is decoded (it is not
    # even base64)
    body = {
        "image_base64": "*" * (4 * 4096 // 3 + 8),
        "edits": {},
        "purpose": PURPOSE,
        "consent": True,
    }
    result = assert_error_shape(post_json(key_client, body), 413)
    assert result["field"] == "image_base64"
    # valid base64 of too many bytes
    body["image_base64"] = base64.b64encode(b"\x89PNG" + b"\x00" * 4096).decode()
    assert assert_error_shape(post_json(key_client, body), 413)["code"] == "file_too_large"


# --- property tests ---------------------------------------------------------------------

TEXT = st.text(st.characters(codec="utf-8"), max_size=40)
DATEISH = st.one_of(
    TEXT,
    st.builds(
        "{:04d}-{:02d}-{:02d}".format, st.integers(0, 9999), st.integers(0, 99), st.integers(0, 99)
    ),
    st.builds(
        "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}{}".format,
        st.integers(0, 9999),
        st.integers(0, 19),
        st.integers(0, 40),
        st.integers(0, 30),
        st.integers(0, 70),
        st.integers(0, 70),
        st.sampled_from(["", "Z", "+23:59", "-24:00", "+99:99", ".9999999", "+05"]),
    ),
)
CURSORISH = st.one_of(
    TEXT, st.builds(lambda o, r, p: cursor(f"o={o}&r={r}&p={p}"), TEXT, TEXT, DATEISH)
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=20,
)


def test_list_filters_never_answer_5xx(key_client):
    @FUZZ
    @given(
        params=st.fixed_dictionaries(
            {},
            optional={
                "created_after": DATEISH,
                "created_before": DATEISH,
                "cursor": CURSORISH,
                "state": TEXT,
                "page_size": st.one_of(TEXT, st.integers().map(str)),
            },
        )
    )
    def check(params):
        response = key_client.get("/api/v1/jobs", params)
        if response.status_code != 200:
            assert_error_shape(response, 400)

    check()


def test_json_bodies_never_answer_5xx_nor_store_anything(key_client, model_bundle):
    junk_image = base64.b64encode(b"GIF89a not really").decode()

    @FUZZ
    @given(
        body=st.one_of(
            JSON,
            st.fixed_dictionaries(
                {"edits": JSON},
                optional={
                    "image_base64": st.one_of(st.just(junk_image), JSON),
                    "purpose": JSON,
                    "consent": JSON,
                },
            ),
        )
    )
    def check(body):
        assert_error_shape(post_json(key_client, body))

    check()
    assert not EditJob.objects.exists()


def test_multipart_edits_never_answer_5xx_nor_store_anything(key_client, model_bundle):
    @FUZZ
    @given(
        edits=st.one_of(TEXT, JSON.map(json.dumps)),
        purpose=st.one_of(TEXT, st.just(PURPOSE)),
        consent=st.one_of(TEXT, st.just("true")),
    )
    def check(edits, purpose, consent):
        response = post_form(
            key_client, edits=edits, image=b"GIF89a not really", purpose=purpose, consent=consent
        )
        assert_error_shape(response)

    check()
    assert not EditJob.objects.exists()
