from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0007_editjob_model_pin"),
    ]

    operations = [
        migrations.AddField(
            model_name="editjob",
            name="quality",
            field=models.CharField(
                choices=[
                    ("fast", "Fast (encoder)"),
                    ("refine", "Refine (encoder + bounded optimisation)"),
                ],
                default="fast",
                help_text="fast: the encoder's latent; refine: then a bounded optimisation against "
                "the aligned crop (steps capped by the operator)",
                max_length=8,
            ),
        ),
    ]
