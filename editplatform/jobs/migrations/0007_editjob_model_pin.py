from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0006_artifact_encryption"),
    ]

    operations = [
        migrations.AddField(
            model_name="editjob",
            name="model_pin",
            field=models.CharField(blank=True, max_length=64),
        ),
    ]
