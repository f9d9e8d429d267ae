from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0003_payment_key"),
    ]

    operations = [
        migrations.AddField(
            model_name="paymentkey",
            name="reason",
            field=models.CharField(blank=True, max_length=32),
        ),
        migrations.AddField(
            model_name="paymentkey",
            name="message",
            field=models.TextField(blank=True),
        ),
    ]
