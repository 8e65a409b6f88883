import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0008_editjob_quality"),
    ]

    operations = [
        migrations.AddField(
            model_name="editjob",
            name="marked_result",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="jobs.artifact",
            ),
        ),
    ]
