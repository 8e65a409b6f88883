"""`manage.py check_artifacts [--mark]`: jobs whose stored bytes are missing, and orphan blobs.

After a restore (docs/operations-restore.md) the database and the artifact storage
come from two backups taken at slightly different moments: a job may reference bytes
the storage backup lacks, and the storage may hold bytes no row references. This
command lists both; `--mark` records one `job.artifacts_missing` event per affected
job (once: a job already marked for the same hashes is skipped), so the job's audit
timeline says its outputs are gone instead of failing on download.
Exit status 1 when a job misses an artifact (so a runbook step can stop on it).
"""

from __future__ import annotations

import json

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from audit import log as audit_log
from audit.models import AuditEvent
from editplatform.jobs import keyed_ids
from editplatform.jobs.audit_actions import JOB_ARTIFACTS_MISSING
from editplatform.jobs.models import Artifact, EditJob, sealed_name, storage_name

KINDS = ("original", "latent", "reconstruction", "edited")


def missing_by_job() -> dict[str, dict[str, str]]:
    """{job id: {kind: sha256}} for every artifact a job references that storage lacks."""
    # Crypto-shredded artifacts have no bytes on purpose: they are not "missing".
    present: dict[str, bool] = dict.fromkeys(
        Artifact.objects.filter(erased_at__isnull=False).values_list("sha256", flat=True), True
    )

    def exists(digest: str) -> bool:
        if digest not in present:
            present[digest] = default_storage.exists(sealed_name(digest)) or default_storage.exists(
                storage_name(digest)
            )
        return present[digest]

    found: dict[str, dict[str, str]] = {}
    rows = EditJob.objects.values_list("pk", *(f"{k}_id" for k in KINDS))
    for pk, *digests in rows.iterator():
        gone = {kind: d for kind, d in zip(KINDS, digests, strict=True) if d and not exists(d)}
        if gone:
            found[str(pk)] = gone
    return found


def orphan_blobs() -> list[str]:
    """Stored blobs no Artifact row refers to (bytes written after the database backup)."""
    known = set(Artifact.objects.values_list("sha256", flat=True))
    orphans = []

    def walk(folder: str) -> None:
        dirs, files = default_storage.listdir(folder)
        for name in files:
            digest = name.removesuffix(".sealed")
            if len(digest) == 64 and digest not in known:
                orphans.append(f"{folder}/{name}".lstrip("/"))
        for sub in dirs:
            walk(f"{folder}/{sub}".lstrip("/"))

    root = storage_name("0" * 64).split("/", 1)[0]
    try:
        walk(root)
    except FileNotFoundError:
        return []
    return sorted(orphans)


class Command(BaseCommand):
    help = (
        "List (and with --mark, record) jobs whose artifacts are missing from storage, "
        "and orphan blobs."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--mark", action="store_true", help="append job.artifacts_missing for each job"
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, mark: bool = False, json: bool = False, **options):
        missing = missing_by_job()
        orphans = orphan_blobs()
        marked = 0
        if mark:
            for job_id, gone in missing.items():
                already = AuditEvent.objects.filter(
                    action=JOB_ARTIFACTS_MISSING, subject=f"job:{job_id}"
                )
                names = {d: keyed_ids.recorded_names(d) for d in gone.values()}
                if any(
                    e.entry and all(any(n in e.entry for n in names[d]) for d in gone.values())
                    for e in already
                ):
                    continue
                with transaction.atomic():
                    audit_log.append_event(
                        JOB_ARTIFACTS_MISSING,
                        actor_name="cli",
                        subject=f"job:{job_id}",
                        payload={"missing": gone},
                    )
                marked += 1
        report = {"jobs_missing_artifacts": missing, "orphan_blobs": orphans, "marked": marked}
        if json:
            self.stdout.write(_dumps(report))
        else:
            for job_id, gone in missing.items():
                self.stdout.write(
                    f"job {job_id}: missing {', '.join(f'{k} {d[:12]}' for k, d in gone.items())}"
                )
            self.stdout.write(
                f"{len(missing)} job(s) missing artifacts, {len(orphans)} orphan blob(s), "
                f"{marked} newly marked"
            )
        if missing:
            raise CommandError(f"{len(missing)} job(s) reference artifacts missing from storage")


def _dumps(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True)
