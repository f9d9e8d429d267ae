"""Customer emails unique whatever their case: a functional unique index on LOWER(email)."""

import django.db.models.functions.text
from django.db import migrations, models


def refuse_case_variants(apps, schema_editor):
    """Name the addresses held twice in different cases, which the new index cannot take."""
    customer = apps.get_model("payments", "Customer")
    seen: dict[str, list[int]] = {}
    for pk, email in customer.objects.exclude(email=None).values_list("pk", "email"):
        seen.setdefault(email.lower(), []).append(pk)
    clashes = {email: ids for email, ids in seen.items() if len(ids) > 1}
    if clashes:
        listed = "; ".join(f"{email}: customers {ids}" for email, ids in sorted(clashes.items()))
        raise RuntimeError(
            "customers share an email address in different cases; give each its own address"
            f" (or none) before migrating: {listed}"
        )


class Migration(migrations.Migration):

    dependencies = [
        ('payments', '0005_customer_owner'),
    ]

    operations = [
        migrations.RunPython(refuse_case_variants, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='customer',
            name='email',
            field=models.EmailField(blank=True, max_length=254, null=True),
        ),
        migrations.AddConstraint(
            model_name='customer',
            constraint=models.UniqueConstraint(django.db.models.functions.text.Lower('email'), name='customer_email_unique_any_case', violation_error_code='unique', violation_error_message='Customer with this Email already exists.'),
        ),
    ]
