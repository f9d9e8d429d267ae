from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("bpm", "0005_status_labels_are_values"),
    ]

    operations = [
        migrations.AlterField(
            model_name="sagainstance",
            name="stuck_reason",
            field=models.CharField(
                blank=True,
                choices=[
                    ("RETRIES_EXHAUSTED", "retries exhausted"),
                    ("REFUSED_AFTER_PIVOT", "refused after the pivot"),
                    ("COMPENSATION_FAILED", "compensation failed"),
                    ("TIMED_OUT", "timed out"),
                    ("NO_PROGRESS", "no progress"),
                    ("HANDLER_MISSING", "handler missing"),
                ],
                max_length=32,
            ),
        ),
    ]
