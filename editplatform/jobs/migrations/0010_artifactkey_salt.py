"""Keyed identifiers in the log (issue 17): a per-artifact salt, an index on the commitment.

Existing key rows get a random salt here (one UPDATE per row, in batches: the table has
one row per stored artifact); events written before this migration keep their plain
hashes and stay valid.
"""

import secrets

from django.db import migrations, models


def add_salts(apps, schema_editor):
    ArtifactKey = apps.get_model("jobs", "ArtifactKey")
    pending = ArtifactKey.objects.filter(salt__isnull=True).values_list("pk", flat=True)
    for pk in pending.iterator(chunk_size=500):
        ArtifactKey.objects.filter(pk=pk, salt__isnull=True).update(salt=secrets.token_bytes(32))


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0009_editjob_marked_result"),
    ]

    operations = [
        migrations.AddField(
            model_name="artifactkey",
            name="salt",
            field=models.BinaryField(
                help_text="per-artifact secret keying the other hashes the log records about "
                "it (upload, parameters); destroyed with the row",
                null=True,
            ),
        ),
        migrations.AlterField(
            model_name="artifactkey",
            name="commitment",
            field=models.CharField(
                db_index=True,
                help_text="HMAC-SHA256 of the plaintext under a key derived from the data key; "
                "what new audit events record instead of the SHA-256 "
                "(editplatform.jobs.keyed_ids)",
                max_length=64,
            ),
        ),
        migrations.RunPython(add_salts, migrations.RunPython.noop),
    ]
