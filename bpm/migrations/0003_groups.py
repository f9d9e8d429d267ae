"""Create the viewers, operators and clients groups with their permissions."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from bpm.permissions import CLIENTS, OPERATORS, VIEWERS, group_apps, sync_groups


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations; make them exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    for app_label in group_apps():
        sync_groups(app_label, apps, using=schema_editor.connection.alias)


def delete_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=(VIEWERS, OPERATORS, CLIENTS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("bpm", "0002_saga_permissions"),
        # No dependency on the apps of BPM_GROUP_APPS: bpm knows none of them. One migrated later
        # gets its permissions into the groups after migrate (bpm.apps.sync_groups_after_migrate).
    ]

    operations = [migrations.RunPython(create_groups, delete_groups)]
