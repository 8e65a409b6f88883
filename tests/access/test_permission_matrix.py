"""Who may do what: one table, role x every API endpoint and portal page x object -> status.

The table is the specification. `test_every_route_has_rows` fails as soon as a URL is
added without rows here, so a new endpoint cannot ship without someone deciding who
may use it. `test_permission_matrix` then drives every row through the real stack
(middleware, 2FA, API keys with scopes, querysets) against PostgreSQL.

Objects: `own` = a finished job the acting user submitted (requesters and the
integration only), `other` = a finished job of another requester, `pending` = another
requester's sensitive job, computed and held for approval, `held` = the acting user's
own held job, `decided` = a job the acting approver approved (released), `-` = no
object. Artifact rows read the `original` of own/other jobs and the held `edited`
output of pending/held/decided jobs: held outputs are 404 to the requester and to
integrations, 200 to approvers and reviewers (compute, then release). A role missing from a
row's mapping means the combination does not exist (e.g. an approver has no own job).

Statuses worth reading twice: 404 (not 403) for jobs a user may not see — no existence
oracle; 409 where access is allowed but the state forbids it (cancel a finished job).
"""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from editplatform.accounts.roles import ensure_groups
from editplatform.approvals import services as approval_services
from editplatform.jobs import policy
from editplatform.jobs import services as job_services
from editplatform.jobs.models import EditJob
from editplatform.jobs.states import State
from editplatform.jobs.tasks import run_edit_job
from editplatform.jobs.uploads import validate_image
from tests import catalog
from tests.conftest import api_client_for, mark_two_factor_verified
from tests.jobs import images

ROLES = ("anon", "requester", "approver", "reviewer", "admin", "integration")
PEOPLE = ("requester", "approver", "reviewer", "admin")


def every(status: int, **overrides: int) -> dict[str, int]:
    return {role: overrides.get(role, status) for role in ROLES}


def people(status: int, *, anon: int, integration: int, **overrides: int) -> dict[str, int]:
    row = {role: overrides.get(role, status) for role in PEOPLE}
    row.update(anon=anon, integration=integration)
    return row


def only(
    role_statuses: dict[str, int], *, others: int, anon: int, integration: int
) -> dict[str, int]:
    row = {role: others for role in PEOPLE}
    row.update(role_statuses)
    row.update(anon=anon, integration=integration)
    return row


PORTAL_ANON = 302  # the login page
# Portal pages ignore API keys: an integration with a key is anonymous there.
PORTAL = {"anon": PORTAL_ANON, "integration": PORTAL_ANON}
API_ANON = 401

# (method, route, object) -> {role: status}
MATRIX: dict[tuple[str, str, str], dict[str, int]] = {
    # --- health -----------------------------------------------------------------
    ("GET", "healthz", "-"): every(200),
    ("GET", "readyz", "-"): every(200),
    # Loopback callers without METRICS_TOKEN (the test client); the token and proxy rules
    # are in tests/deploy/test_metrics_view.py.
    ("GET", "metrics", "-"): every(200),
    # --- API: schema and docs ---------------------------------------------------
    ("GET", "api/v1/schema", "-"): every(200),  # the schema and docs hold no data (issue 13 item 7)
    ("GET", "api/v1/docs", "-"): every(200),
    # --- API: jobs --------------------------------------------------------------
    ("GET", "api/v1/jobs", "-"): every(200, anon=API_ANON),
    ("POST", "api/v1/jobs", "-"): people(403, requester=201, anon=API_ANON, integration=201),
    ("GET", "api/v1/jobs/<uuid:job_id>", "own"): {"requester": 200, "integration": 200},
    ("GET", "api/v1/jobs/<uuid:job_id>", "other"): people(
        404, reviewer=200, anon=API_ANON, integration=404
    ),
    ("GET", "api/v1/jobs/<uuid:job_id>", "pending"): people(
        404, reviewer=200, approver=200, anon=API_ANON, integration=404
    ),
    ("POST", "api/v1/jobs/<uuid:job_id>/cancel", "own"): {"requester": 409, "integration": 409},
    ("POST", "api/v1/jobs/<uuid:job_id>/cancel", "other"): people(
        404, reviewer=403, anon=API_ANON, integration=404
    ),
    ("POST", "api/v1/jobs/<uuid:job_id>/cancel", "pending"): people(
        404, reviewer=403, approver=403, anon=API_ANON, integration=404
    ),
    ("GET", "api/v1/jobs/<uuid:job_id>/artifacts/<str:kind>", "own"): {
        "requester": 200,
        "integration": 200,
    },
    ("GET", "api/v1/jobs/<uuid:job_id>/artifacts/<str:kind>", "other"): people(
        404, reviewer=200, anon=API_ANON, integration=404
    ),
    ("GET", "api/v1/jobs/<uuid:job_id>/artifacts/<str:kind>", "pending"): people(
        404, reviewer=200, approver=200, anon=API_ANON, integration=404
    ),
    ("GET", "api/v1/jobs/<uuid:job_id>/artifacts/<str:kind>", "held"): {
        "requester": 404,
        "integration": 404,
    },
    ("GET", "api/v1/jobs/<uuid:job_id>", "held"): {"requester": 200, "integration": 200},
    ("GET", "api/v1/edits", "-"): every(200, anon=API_ANON),
    # --- API: approvals (people only; no key scope opens them) -------------------
    ("POST", "api/v1/jobs/<uuid:job_id>/approve", "pending"): people(
        404, approver=200, reviewer=403, anon=API_ANON, integration=403
    ),
    ("POST", "api/v1/jobs/<uuid:job_id>/reject", "pending"): people(
        404, approver=200, reviewer=403, anon=API_ANON, integration=403
    ),
    # --- API: audit log (audit:read keys and reviewers) ----------------------------
    ("GET", "api/v1/audit/events", "-"): people(403, reviewer=200, anon=API_ANON, integration=200),
    ("GET", "api/v1/audit/events/<int:seq>", "other"): people(
        403, reviewer=200, anon=API_ANON, integration=200
    ),
    ("GET", "api/v1/audit/checkpoint", "-"): people(
        403, reviewer=200, anon=API_ANON, integration=200
    ),
    ("GET", "api/v1/audit/consistency", "-"): people(
        403, reviewer=200, anon=API_ANON, integration=200
    ),
    # --- portal: sign-in --------------------------------------------------------
    ("GET", "", "-"): people(200, **PORTAL),
    ("GET", "login/", "-"): people(302, anon=200, integration=200),
    ("POST", "logout/", "-"): every(302),
    # Verified 2FA roles are sent on; a requester may enrol a second factor voluntarily.
    ("GET", "account/2fa/", "-"): people(302, requester=200, **PORTAL),
    ("GET", "account/", "-"): people(200, **PORTAL),
    # --- portal: notifications (each person's own) ----------------------------------
    ("GET", "notifications/", "-"): people(200, **PORTAL),
    ("POST", "notifications/read/", "-"): people(302, **PORTAL),
    # --- portal: jobs -----------------------------------------------------------
    ("GET", "jobs/", "-"): people(200, **PORTAL),
    ("GET", "jobs/new/", "-"): people(403, requester=200, **PORTAL),
    ("GET", "jobs/<uuid:job_id>/", "own"): {"requester": 200},
    ("GET", "jobs/<uuid:job_id>/", "other"): people(404, reviewer=200, **PORTAL),
    ("GET", "jobs/<uuid:job_id>/", "pending"): people(404, reviewer=200, approver=200, **PORTAL),
    ("POST", "jobs/<uuid:job_id>/cancel/", "own"): {"requester": 302},
    ("POST", "jobs/<uuid:job_id>/cancel/", "other"): people(404, reviewer=403, **PORTAL),
    ("GET", "jobs/<uuid:job_id>/artifacts/<str:kind>", "own"): {"requester": 200},
    ("GET", "jobs/<uuid:job_id>/artifacts/<str:kind>", "other"): people(
        404, reviewer=200, **PORTAL
    ),
    ("GET", "jobs/<uuid:job_id>/artifacts/<str:kind>", "pending"): people(
        404, reviewer=200, approver=200, **PORTAL
    ),
    ("GET", "jobs/<uuid:job_id>/artifacts/<str:kind>", "held"): {"requester": 404},
    ("GET", "jobs/<uuid:job_id>/artifacts/<str:kind>", "decided"): {"approver": 200},
    ("GET", "jobs/<uuid:job_id>/", "held"): {"requester": 200},
    ("GET", "jobs/<uuid:job_id>/", "decided"): {"approver": 200},
    # --- portal: approvals ------------------------------------------------------
    ("GET", "approvals/", "-"): only({"approver": 200}, others=403, **PORTAL),
    ("GET", "approvals/<uuid:job_id>/", "pending"): only({"approver": 200}, others=403, **PORTAL),
    ("GET", "approvals/<uuid:job_id>/", "decided"): {"approver": 200},
    ("POST", "approvals/<uuid:job_id>/decide", "pending"): only(
        {"approver": 302}, others=403, **PORTAL
    ),
    # --- portal: audit trail (compliance reviewers only) --------------------------
    ("GET", "audit/", "-"): only({"reviewer": 200}, others=403, **PORTAL),
    ("GET", "audit/events/<int:seq>/", "other"): only({"reviewer": 200}, others=403, **PORTAL),
    ("GET", "audit/jobs/", "-"): only({"reviewer": 400}, others=403, **PORTAL),  # no ?subject=
    ("GET", "audit/jobs/<str:subject>/", "other"): only({"reviewer": 200}, others=403, **PORTAL),
    ("GET", "audit/jobs/<str:subject>/artifacts/<str:sha256>", "other"): only(
        {"reviewer": 200}, others=403, **PORTAL
    ),
    ("GET", "audit/verify/", "-"): only({"reviewer": 200}, others=403, **PORTAL),
    ("POST", "audit/export/", "-"): only({"reviewer": 200}, others=403, **PORTAL),
    ("GET", "audit/public-key", "-"): only({"reviewer": 200}, others=403, **PORTAL),
    # --- provenance: "was this made here?" (reviewers; the public check is off by default)
    ("GET", "provenance/check", "-"): only({"reviewer": 200}, others=403, **PORTAL),
    ("POST", "api/v1/provenance/check", "-"): people(
        403, reviewer=400, anon=API_ANON, integration=403
    ),  # no image
    ("POST", "api/v1/provenance/public-check", "-"): every(404),
    # --- model registry (issue 16): staff read, admins register/activate/retire, model
    # approvers (a permission no matrix role holds) approve, reviewers read the history.
    # "model" = the bootstrapped active version: activating it again or retiring it is a
    # refused state change (message and redirect), never a 200.
    ("GET", "models/", "-"): people(200, **PORTAL),
    ("GET", "models/register", "-"): only({"admin": 200}, others=403, **PORTAL),
    ("POST", "models/register", "-"): only({"admin": 400}, others=403, **PORTAL),  # no bundle
    ("GET", "models/history", "-"): only({"reviewer": 200}, others=403, **PORTAL),
    ("GET", "models/<str:version>/", "model"): people(200, **PORTAL),
    ("POST", "models/<str:version>/approve", "model"): people(403, **PORTAL),
    ("POST", "models/<str:version>/activate", "model"): only({"admin": 302}, others=403, **PORTAL),
    ("POST", "models/<str:version>/retire", "model"): only({"admin": 302}, others=403, **PORTAL),
    # proofs of concept (issue 16): admins only; "poc" = a finished run another admin
    # started (its report stored); an empty form is a 400 naming the missing fields.
    ("GET", "models/poc/", "-"): only({"admin": 200}, others=403, **PORTAL),
    ("POST", "models/poc/", "-"): only({"admin": 400}, others=403, **PORTAL),
    ("GET", "models/poc/<uuid:run_id>/", "poc"): only({"admin": 200}, others=403, **PORTAL),
    ("GET", "models/poc/<uuid:run_id>/status", "poc"): only({"admin": 200}, others=403, **PORTAL),
    ("GET", "models/poc/<uuid:run_id>/report", "poc"): only({"admin": 200}, others=403, **PORTAL),
    ("GET", "models/poc/<uuid:run_id>/report.json", "poc"): only(
        {"admin": 200}, others=403, **PORTAL
    ),
    ("GET", "provenance/public-check", "-"): every(404),
    # --- retention (issue 17): reviewers read and act (acting redirects with a message:
    # an empty form is refused in the message, never a 200); unknown holds/requests 404.
    ("GET", "retention/", "-"): only({"reviewer": 200}, others=403, **PORTAL),
    ("POST", "retention/run", "-"): only({"reviewer": 302}, others=403, **PORTAL),
    ("POST", "retention/holds", "-"): only({"reviewer": 302}, others=403, **PORTAL),
    ("POST", "retention/holds/<int:pk>/request-lift", "-"): only(
        {"reviewer": 404}, others=403, **PORTAL
    ),
    ("POST", "retention/holds/<int:pk>/confirm-lift", "-"): only(
        {"reviewer": 404}, others=403, **PORTAL
    ),
    ("POST", "retention/requests", "-"): only({"reviewer": 302}, others=403, **PORTAL),
    ("POST", "retention/requests/<int:pk>/approve", "-"): only(
        {"reviewer": 404}, others=403, **PORTAL
    ),
    ("GET", "retention/requests/<int:pk>/certificate", "-"): only(
        {"reviewer": 404}, others=403, **PORTAL
    ),
    # --- API: retention (issue 17): the pages' rules; no API-key scope opens them. Empty
    # bodies are refused (400 naming the field); unknown holds/requests 404.
    ("GET", "api/v1/retention/holds", "-"): only(
        {"reviewer": 200}, others=403, anon=API_ANON, integration=403
    ),
    ("POST", "api/v1/retention/holds", "-"): only(
        {"reviewer": 400}, others=403, anon=API_ANON, integration=403
    ),
    ("GET", "api/v1/retention/holds/<int:pk>", "-"): only(
        {"reviewer": 404}, others=403, anon=API_ANON, integration=403
    ),
    ("POST", "api/v1/retention/holds/<int:pk>/request-lift", "-"): only(
        {"reviewer": 404}, others=403, anon=API_ANON, integration=403
    ),
    ("POST", "api/v1/retention/holds/<int:pk>/confirm-lift", "-"): only(
        {"reviewer": 404}, others=403, anon=API_ANON, integration=403
    ),
    ("GET", "api/v1/retention/requests", "-"): only(
        {"reviewer": 200}, others=403, anon=API_ANON, integration=403
    ),
    ("POST", "api/v1/retention/requests", "-"): only(
        {"reviewer": 400}, others=403, anon=API_ANON, integration=403
    ),
    # the photo lookup (issue 17 c): reviewers only; an empty body is a 400 naming `photo`
    ("POST", "api/v1/retention/photo-lookup", "-"): only(
        {"reviewer": 400}, others=403, anon=API_ANON, integration=403
    ),
    ("GET", "api/v1/retention/requests/<int:pk>", "-"): only(
        {"reviewer": 404}, others=403, anon=API_ANON, integration=403
    ),
    ("POST", "api/v1/retention/requests/<int:pk>/approve", "-"): only(
        {"reviewer": 404}, others=403, anon=API_ANON, integration=403
    ),
    ("GET", "api/v1/retention/requests/<int:pk>/certificate", "-"): only(
        {"reviewer": 404}, others=403, anon=API_ANON, integration=403
    ),
}

SKIPPED_PREFIXES = ("admin/",)  # Django's admin guards itself (is_staff + model permissions)


def _routes(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def all_routes() -> set[str]:
    return {
        route
        for route in _routes(get_resolver().url_patterns)
        if not route.startswith(SKIPPED_PREFIXES)
    }


def test_every_route_has_rows():
    covered = {route for (_method, route, _obj) in MATRIX}
    missing = sorted(all_routes() - covered)
    stale = sorted(covered - all_routes())
    assert missing == [], f"routes without a row in the permission matrix: {missing}"
    assert stale == [], f"rows for routes that no longer exist: {stale}"


def test_every_row_names_known_roles():
    for key, row in MATRIX.items():
        assert set(row) <= set(ROLES), key


# --- driving the table -----------------------------------------------------------------


def _png(shade: int) -> bytes:
    """A catalogue photo in the demo model's domain (tests.jobs.images), one per shade."""
    return images.png((40, 40), seed=shade)


def _finished_job(user, shade: int) -> EditJob:
    job, _ = job_services.submit(
        user=user,
        image=validate_image(_png(shade)),
        edits=catalog.request(),
        purpose="matrix fixture job",
        consent=True,
        source="api",
    )
    run_edit_job.apply(args=[str(job.pk)])  # the real task, in this process
    job.refresh_from_db()
    assert job.state == State.SUCCEEDED, job.error
    return job


def _pending_job(user, shade: int) -> EditJob:
    """A sensitive job computed by the real task: its outputs are held for approval."""
    job, _ = job_services.submit(
        user=user,
        image=validate_image(_png(shade)),
        edits=catalog.request(catalog.sensitive()),
        purpose="matrix fixture sensitive job",
        consent=True,
        source="portal",
    )
    run_edit_job.apply(args=[str(job.pk)])
    job.refresh_from_db()
    assert job.state == State.AWAITING_APPROVAL and job.edited_id, job.error
    return job


def _decided_job(requester, approver, shade: int) -> EditJob:
    job = _pending_job(requester, shade)
    return approval_services.approve(
        job,
        approver,
        params_sha256=job.params_sha256,
        outputs_sha256=policy.outputs_sha256(job),
        comment="matrix approves",
    )


def _user(username: str, role: str):
    user = get_user_model().objects.create_user(username, password="matrix password 123")
    user.groups.add(ensure_groups()[role])
    return user


class World:
    """The users, clients and objects one matrix run needs."""

    def __init__(self):
        self.users = {role: _user(f"m-{role}", role) for role in ROLES if role != "anon"}
        self.users["admin"].is_staff = True
        self.users["admin"].save(update_fields=["is_staff"])
        self.alice = _user("m-alice", "requester")
        self.shade = 0
        self._cache: dict[tuple[str, str], EditJob] = {}

    def client(self, role: str):
        if role == "anon":
            return Client()
        if role == "integration":
            return api_client_for(self.users[role])
        client = Client()
        client.force_login(self.users[role])
        if role in ("approver", "reviewer", "admin"):
            mark_two_factor_verified(client, self.users[role])
        return client

    def next_shade(self) -> int:
        self.shade += 7
        return self.shade % 256

    def job(self, obj: str, role: str, *, fresh: bool = False) -> EditJob | None:
        """Finished jobs are shared between rows (no row can change them: cancelling a
        finished job is refused); a row that decides on a pending job gets a fresh one."""
        if obj in ("-", "model", "poc"):  # named by _model_version() / _poc_run_id()
            return None
        key = (obj, role if obj in ("own", "held", "decided") else "")
        if not fresh and key in self._cache:
            return self._cache[key]
        if obj == "own":
            job = _finished_job(self.users[role], self.next_shade())
        elif obj == "other":
            job = _finished_job(self.alice, self.next_shade())
        elif obj == "held":
            job = _pending_job(self.users[role], self.next_shade())
        elif obj == "decided":
            job = _decided_job(self.alice, self.users[role], self.next_shade())
        else:
            job = _pending_job(self.alice, self.next_shade())
        if not fresh:
            self._cache[key] = job
        return job


def _url(route: str, job: EditJob | None, obj: str = "-") -> str:
    def value(match: re.Match) -> str:
        converter, name = match.group(1), match.group(2)
        if name == "job_id":
            return str(job.pk)
        if name == "kind":
            return "edited" if obj in ("pending", "held", "decided") else "original"
        if name == "subject":
            return f"job:{job.pk}"
        if name == "sha256":
            return job.original_id
        if name == "version":
            return _model_version()
        if name == "run_id":
            return _poc_run_id()
        if name == "pk":  # retention holds and erasure requests: one that does not exist
            return "999999"
        if name == "seq":
            from audit.models import AuditEvent

            return str(
                AuditEvent.objects.filter(subject=f"job:{job.pk}")
                .order_by("seq")
                .values_list("seq", flat=True)[0]
            )
        raise AssertionError(f"no value for <{converter}:{name}> in {route}")

    query = QUERIES.get(route)
    return "/" + re.sub(r"<(\w+):(\w+)>", value, route) + (f"?{query()}" if query else "")


def _model_version() -> str:
    """The active registered version (bootstrapped from MODEL_BUNDLE, so jobs keep running)."""
    from pathlib import Path

    from django.conf import settings as django_settings

    from editplatform.models_registry import services as model_services

    active = model_services.active_version() or model_services.bootstrap(
        Path(django_settings.MODEL_BUNDLE)
    )
    return active.version


def _poc_run_id() -> str:
    """A finished proof-of-concept run of the active model, started by another admin
    (the task's body run in this process, as the job fixtures run theirs)."""
    from editplatform.models_registry import poc_runs
    from editplatform.models_registry.models import ModelVersion, PocRun
    from tests.models_registry.poc_helpers import photo_zip

    run = PocRun.objects.filter(state=PocRun.State.SUCCEEDED).first()
    if run is None:
        run = poc_runs.start(
            user=_user("m-admin-poc", "admin"),
            version=ModelVersion.objects.get(version=_model_version()),
            gpu_hour_price=1,
            upload=photo_zip(2),
        )
        assert poc_runs.execute(run.pk) == PocRun.State.SUCCEEDED
    return str(run.pk)


def _consistency_query() -> str:
    from audit.log import make_checkpoint

    size = make_checkpoint().size  # a signed checkpoint covering everything so far
    return f"old=1&new={size}"


QUERIES = {"api/v1/audit/consistency": _consistency_query}


def _body(method: str, route: str, job: EditJob | None, world: World) -> dict:
    if method != "POST" or route.startswith(("models/", "retention/", "api/v1/retention/")):
        # forms (and the retention API, whose empty bodies are refused): empty bodies
        return {}
    if route == "api/v1/jobs":
        return {
            "data": {
                "image": io.BytesIO(_png(world.next_shade())),
                "edits": catalog.request_json(fraction=0.6),
                "purpose": "matrix submission",
                "consent": "true",
            },
            "format": "multipart",
        }
    if route.endswith("/approve"):
        return {
            "data": {
                "params_sha256": job.params_sha256,
                "outputs_sha256": policy.outputs_sha256(job),
            },
            "format": "json",
        }
    if route.endswith("/reject"):
        return {"data": {"reason": "matrix says no"}, "format": "json"}
    if route.endswith("/decide"):
        return {
            "data": {
                "verdict": "approve",
                "params_sha256": job.params_sha256,
                "outputs_sha256": policy.outputs_sha256(job),
            }
        }
    if route == "audit/export/":
        return {"data": {"format": "jsonl"}}
    return {}


@pytest.mark.django_db
def test_permission_matrix(model_bundle, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    world = World()
    mismatches = []
    for (method, route, obj), row in MATRIX.items():
        for role, expected in row.items():
            job = world.job(obj, role, fresh=route.endswith(("/approve", "/reject", "/decide")))
            client = world.client(role)
            body = _body(method, route, job, world)
            url = _url(route, job, obj)
            if method == "GET":
                response = client.get(url)
            elif hasattr(client, "credentials") or "format" in body:
                from rest_framework.test import APIClient

                api = client if isinstance(client, APIClient) else _as_api_client(client)
                response = api.post(url, body.get("data"), format=body.get("format"))
            else:
                response = client.post(url, body.get("data", {}))
            if response.status_code != expected:
                mismatches.append(
                    f"{role:<11} {method:<4} /{route} [{obj}] -> {response.status_code},"
                    f" expected {expected}"
                )
    assert mismatches == [], "permission matrix mismatches:\n" + "\n".join(mismatches)


def _as_api_client(client: Client):
    """An APIClient sharing the Django test client's session cookie."""
    from rest_framework.test import APIClient

    api = APIClient()
    api.cookies = client.cookies
    return api


# --- admin escalation (issue 11) ---------------------------------------------------------
# The admin role manages people, roles, keys and 2FA resets: the admin pages it may use,
# and the ones an admin used to reach by making themselves superuser. Other people are
# sent to the admin's sign-in page (302); so is an integration (its key is no session).

ADMIN_PAGES: dict[tuple[str, str], dict[str, int]] = {
    ("GET", "admin/"): only({"admin": 200}, others=302, anon=302, integration=302),
    ("GET", "admin/auth/user/"): only({"admin": 200}, others=302, anon=302, integration=302),
    ("GET", "admin/accounts/integrationkey/"): only(
        {"admin": 200}, others=302, anon=302, integration=302
    ),
    ("GET", "admin/accounts/accountrecovery/"): only(
        {"admin": 200}, others=302, anon=302, integration=302
    ),
    ("GET", "admin/otp_totp/totpdevice/"): only(
        {"admin": 200}, others=302, anon=302, integration=302
    ),
    ("GET", "admin/axes/accessattempt/"): only(
        {"admin": 200}, others=302, anon=302, integration=302
    ),
    # Model versions (issue 16): admins read them here; state changes only via four-eyes.
    ("GET", "admin/models_registry/modelversion/"): only(
        {"admin": 200}, others=302, anon=302, integration=302
    ),
    ("GET", "admin/models_registry/modelversion/add/"): only(
        {"admin": 403}, others=302, anon=302, integration=302
    ),
    # Escalation targets: the audit tables, groups' permissions, adding TOTP devices.
    ("GET", "admin/audit/auditevent/"): only({"admin": 403}, others=302, anon=302, integration=302),
    ("GET", "admin/audit/checkpoint/"): only({"admin": 403}, others=302, anon=302, integration=302),
    ("GET", "admin/auth/group/"): only({"admin": 404}, others=302, anon=302, integration=302),
    ("GET", "admin/auth/permission/"): only({"admin": 404}, others=302, anon=302, integration=302),
    ("GET", "admin/otp_totp/totpdevice/add/"): only(
        {"admin": 403}, others=302, anon=302, integration=302
    ),
    ("GET", "admin/accounts/accountrecovery/add/"): only(
        {"admin": 403}, others=302, anon=302, integration=302
    ),
}


@pytest.mark.django_db
def test_admin_pages_and_escalation_rows(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    world = World()
    mismatches = []
    for (method, route), row in ADMIN_PAGES.items():
        for role, expected in row.items():
            response = world.client(role).get("/" + route)
            if response.status_code != expected:
                mismatches.append(
                    f"{role:<11} {method} /{route} -> {response.status_code}, expected {expected}"
                )
    assert mismatches == [], "admin page mismatches:\n" + "\n".join(mismatches)
    # The admin ticks "superuser" on their own account: the field is not there, the POST
    # is ignored, and the audit tables stay closed.
    admin = world.users["admin"]
    client = world.client("admin")
    form = client.get(f"/admin/auth/user/{admin.pk}/change/").context["adminform"].form
    data = {
        name: form.initial.get(name) for name in form.fields if name not in ("password", "groups")
    }
    data = {k: ("on" if v is True else v) for k, v in data.items() if v not in (None, False)}
    data.update(groups=[g.pk for g in admin.groups.all()], is_superuser="on")
    assert client.post(f"/admin/auth/user/{admin.pk}/change/", data).status_code == 302
    admin.refresh_from_db()
    assert not admin.is_superuser
    assert client.get("/admin/audit/auditevent/").status_code == 403


# --- service accounts (issue 11) -----------------------------------------------------------


@pytest.mark.django_db
def test_service_account_rows(model_bundle, settings):
    """A service account that holds a human role (rows written past every guard) gets
    nothing through its key: every API route answers 403; the portal sees it anonymous."""
    from django.db import connection

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    world = World()
    mixed = world.users["integration"]
    client = world.client("integration")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO auth_user_groups (user_id, group_id) VALUES (%s, %s)",
            [mixed.pk, ensure_groups()["reviewer"].pk],
        )
    mismatches = []
    for (method, route, obj), row in MATRIX.items():
        if "integration" not in row or obj == "own":
            continue
        # Routes that take no credentials at all (public docs, the public check) answer
        # the key's holder as anyone; every other API route refuses the mixed account.
        credential_free = row.get("anon") == row["integration"] and row["anon"] not in (
            API_ANON,
            PORTAL_ANON,
        )
        expected = 403 if route.startswith("api/") and not credential_free else row["integration"]
        job = world.job(
            obj, "integration", fresh=route.endswith(("/approve", "/reject", "/decide"))
        )
        url = _url(route, job)
        body = _body(method, route, job, world)
        response = (
            client.get(url)
            if method == "GET"
            else client.post(url, body.get("data"), format=body.get("format"))
        )
        if response.status_code != expected:
            mismatches.append(
                f"integration+reviewer {method} /{route} [{obj}] -> {response.status_code}, "
                f"expected {expected}"
            )
    assert mismatches == [], "service account mismatches:\n" + "\n".join(mismatches)
    # And the mix cannot be made through the product's own paths.
    from editplatform.accounts.services import AccountError, grant_role

    svc = _user("m-svc-2", "integration")
    with pytest.raises(AccountError, match="integration-only"):
        grant_role(svc, "approver")
