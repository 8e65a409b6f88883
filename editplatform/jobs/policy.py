"""When a job's outputs need an approval before release, and what an approval binds to.

A job needs approval when any requested edit is marked ``sensitive`` in the model
bundle's catalog (with a non-zero strength), or when the operator requires approval
for every job (``JOB_APPROVAL_FOR_ALL``). Such a job is computed first and its outputs
held (compute, then release): the approver judges the result itself. An approval binds
to the job's parameter hash (original, edits, purpose, face, quality) *and* to the hash of its held
outputs (:func:`outputs_sha256`), both recomputed from the row when the approver
decides and again at release (:func:`may_release`), so an approval can never be reused
for other parameters or swapped outputs. The worker only refuses a tampered row
(:func:`may_run`): running is harmless now, releasing is what needs the approval.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from django.conf import settings

from editplatform.jobs import approval_hook


def params_sha256(
    original_sha256: str,
    edits: Mapping[str, float],
    purpose: str,
    *,
    face_index: int | None = None,
    quality: str = "fast",
) -> str:
    """Canonical hash of what a job will do (what an approver approves).

    ``face_index`` (which face is edited) and ``quality`` change the result, so they are
    bound too. They enter the canonical form only when they differ from the defaults
    (no face chosen, ``fast``): the hash of a default job is the one it had before these
    parameters existed, so digests recorded in the log and in decisions stay valid.
    """
    params: dict = {
        "original_sha256": original_sha256,
        "edits": dict(sorted(edits.items())),
        "purpose": purpose,
    }
    if face_index is not None:
        params["face_index"] = int(face_index)
    if quality != "fast":
        params["quality"] = quality
    canonical = json.dumps(
        params,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def job_params_sha256(job) -> str:
    """:func:`params_sha256` of the job's row as it is now (tamper checks, approvals)."""
    return params_sha256(
        job.original_id,
        job.edits,
        job.purpose,
        face_index=job.face_index,
        quality=job.quality or "fast",
    )


def sensitive_edits(catalog, edits: Mapping[str, float]) -> list[str]:
    return catalog.sensitive_edits(edits)


def needs_approval(catalog, edits: Mapping[str, float]) -> bool:
    return bool(settings.JOB_APPROVAL_FOR_ALL) or bool(sensitive_edits(catalog, edits))


OUT_OF_DOMAIN_POLICIES = ("refuse", "approve", "flag")


def out_of_domain_policy() -> str:
    """``JOB_OUT_OF_DOMAIN``: what a job whose photo the model cannot represent gets."""
    value = str(getattr(settings, "JOB_OUT_OF_DOMAIN", "approve")).strip().lower()
    return value if value in OUT_OF_DOMAIN_POLICIES else "approve"


def is_out_of_domain(job) -> bool:
    """The job's domain report (set by the worker once computed) says out of domain."""
    report = getattr(job, "domain_report", None) or {}
    return report.get("in_domain") is False


def approval_reasons(job, catalog) -> list[str]:
    """Every reason this job needs an approver before its outputs are released.

    ``approval_for_all`` (JOB_APPROVAL_FOR_ALL), ``sensitive_edit:<name>`` per sensitive
    edit, and ``out_of_domain`` when the job's domain report says so and the policy is
    ``approve``. The one list the approval flow (compute, then hold until approved)
    asks; empty: release at once.
    """
    reasons = []
    if settings.JOB_APPROVAL_FOR_ALL:
        reasons.append("approval_for_all")
    reasons += [f"sensitive_edit:{name}" for name in sensitive_edits(catalog, job.edits)]
    if is_out_of_domain(job) and out_of_domain_policy() == "approve":
        reasons.append("out_of_domain")
    return reasons


def out_of_domain_decision(job, domain_report: Mapping) -> str:
    """What the worker does with a computed job: ``released`` (in domain), ``flagged``
    (policy ``flag``), ``refused`` (policy ``refuse``) or ``held`` (policy ``approve``:
    computed, outputs held until an approver releases them, like a sensitive edit)."""
    if domain_report.get("in_domain", True):
        return "released"
    chosen = out_of_domain_policy()
    if chosen == "flag":
        return "flagged"
    if chosen == "refuse":
        return "refused"
    return "held"


def is_tampered(job) -> bool:
    """The row no longer matches the parameter hash it was submitted (and approved) with."""
    return job.params_sha256 != job_params_sha256(job)


OUTPUT_KINDS = ("reconstruction", "edited", "latent", "result", "aligned", "transform")


def output_hashes(job) -> dict[str, str]:
    """{kind: sha256} of the job's outputs as the row names them now."""
    return {kind: getattr(job, f"{kind}_id") or "" for kind in OUTPUT_KINDS}


def outputs_sha256(job) -> str:
    """Canonical hash of the job's outputs (what an approver saw), read from the row."""
    canonical = json.dumps(output_hashes(job), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def may_run(job, catalog) -> bool:
    """True when the worker may run the job: its row still matches its parameter hash.

    Approval is no longer a condition to run: a job that needs one is computed and its
    outputs held; the approval is checked at release (:func:`may_release`).
    """
    return not is_tampered(job)


def needs_hold(job, catalog) -> bool:
    """Must this job's outputs be held for an approver (asked again when it finishes)?"""
    return bool(job.needs_approval) or needs_approval(catalog, job.edits)


def may_release(job) -> bool:
    """True when held outputs may be released: untampered and approved for them.

    Whether the approvals suffice (for these parameters and these output hashes) is
    the approval hook's answer (the approvals app's four-eyes rules); with no hook
    registered nothing is ever released: held outputs fail closed.
    """
    if is_tampered(job):
        return False
    return approval_hook.is_approved(job)
