"""Compute, then release: `held_at`, `expired`, and `resubmitted_from`.

Jobs left in `awaiting_approval` by "approve, then run" have no outputs to hold: they
go to `queued` (enqueued_at NULL, so the sweeper publishes them), are computed, and
come back held for the approver. Written with the historical model only (no project
code is imported from a migration).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def requeue_unheld(apps, schema_editor):
    from django.utils import timezone

    EditJob = apps.get_model("jobs", "EditJob")
    now = timezone.now()
    EditJob.objects.filter(state="awaiting_approval", edited__isnull=True).update(
        state="queued", stage="queued", queued_at=now, enqueued_at=None, updated_at=now)


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('jobs', '0002_job_api_key'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='editjob',
            name='jobs_state_known',
        ),
        migrations.AddField(
            model_name='editjob',
            name='held_at',
            field=models.DateTimeField(blank=True, help_text='when the outputs were computed and held for approval', null=True),
        ),
        migrations.AddField(
            model_name='editjob',
            name='resubmitted_from',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='resubmissions', to='jobs.editjob'),
        ),
        migrations.AlterField(
            model_name='editjob',
            name='state',
            field=models.CharField(choices=[('submitted', 'Submitted'), ('awaiting_approval', 'Held for approval'), ('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('cancelled', 'Cancelled'), ('rejected', 'Rejected'), ('expired', 'Expired')], default='submitted', max_length=20),
        ),
        migrations.AddConstraint(
            model_name='editjob',
            constraint=models.CheckConstraint(condition=models.Q(('state__in', ['submitted', 'awaiting_approval', 'queued', 'running', 'succeeded', 'failed', 'cancelled', 'rejected', 'expired'])), name='jobs_state_known'),
        ),
        migrations.RunPython(requeue_unheld, migrations.RunPython.noop),
    ]
