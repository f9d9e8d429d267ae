"""Definition versions become drafts until a second designer approves them.

Existing versions were live, so they become PUBLISHED; new rows default to DRAFT. A designers
group gets the new compose permission, and the operators group loses the add permissions that
let it compose.
"""

from django.contrib.auth.management import create_permissions

import bpm.clock
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from bpm.permissions import DESIGNERS, OPERATORS, OPERATOR_WITHDRAWN, group_apps, sync_groups


def _withdrawn(apps, using):
    permission_model = apps.get_model("auth", "Permission")
    codenames = [codename for _, codename in OPERATOR_WITHDRAWN]
    return list(
        permission_model.objects.using(using).filter(
            content_type__app_label="bpm", codename__in=codenames
        )
    )


def create_designers(apps, schema_editor):
    using = schema_editor.connection.alias
    # Permissions are normally created after all migrations; make the new one exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    for app_label in group_apps():
        sync_groups(app_label, apps, using=using)
    group_model = apps.get_model("auth", "Group")
    operators = group_model.objects.using(using).filter(name=OPERATORS).first()
    if operators is not None:
        operators.permissions.remove(*_withdrawn(apps, using))


def delete_designers(apps, schema_editor):
    using = schema_editor.connection.alias
    group_model = apps.get_model("auth", "Group")
    group_model.objects.using(using).filter(name=DESIGNERS).delete()
    operators = group_model.objects.using(using).filter(name=OPERATORS).first()
    if operators is not None:
        operators.permissions.add(*_withdrawn(apps, using))


class Migration(migrations.Migration):

    dependencies = [
        ('bpm', '0006_stuck_reason_handler_missing'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='sagadefinition',
            options={'ordering': ('name', '-version'), 'permissions': [('compose_sagadefinition', "Can compose saga definition versions and review other designers' drafts")]},
        ),
        migrations.AddField(
            model_name='sagadefinition',
            name='change_reason',
            field=models.TextField(blank=True, help_text='why the composer made this version'),
        ),
        migrations.AddField(
            model_name='sagadefinition',
            name='composed_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='sagadefinition',
            name='review_comment',
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name='sagadefinition',
            name='reviewed_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='sagadefinition',
            name='reviewed_by',
            field=models.ForeignKey(blank=True, help_text='the designer who approved or rejected this draft', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        # Every existing version was live: PUBLISHED. New rows are drafts unless published.
        migrations.AddField(
            model_name='sagadefinition',
            name='status',
            field=models.CharField(choices=[('DRAFT', 'DRAFT'), ('PUBLISHED', 'PUBLISHED'), ('REJECTED', 'REJECTED')], default='PUBLISHED', max_length=16),
        ),
        migrations.AlterField(
            model_name='sagadefinition',
            name='status',
            field=models.CharField(choices=[('DRAFT', 'DRAFT'), ('PUBLISHED', 'PUBLISHED'), ('REJECTED', 'REJECTED')], default='DRAFT', max_length=16),
        ),
        migrations.CreateModel(
            name='DefinitionEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('type', models.CharField(choices=[('COMPOSED', 'composed as a draft'), ('APPROVED', 'approved and published'), ('REJECTED', 'rejected'), ('DEPLOYED', 'published from a code declaration')], max_length=16)),
                ('at', models.DateTimeField(default=bpm.clock.now)),
                ('actor', models.CharField(max_length=200)),
                ('comment', models.TextField(blank=True)),
                ('definition', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='audit_events', to='bpm.sagadefinition')),
            ],
            options={
                'ordering': ('at', 'id'),
            },
        ),
        migrations.RunPython(create_designers, delete_designers),
    ]
