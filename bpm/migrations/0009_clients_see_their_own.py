"""Take from the clients group the view permissions that showed every customer, order and saga.

Clients now read only the rows they own (bpm.ownership); sync_groups only ever adds, so the
permissions an earlier version granted are removed here.
"""

from django.db import migrations

from bpm.permissions import CLIENTS

# What clients held before they were scoped to their own rows, as this release's site granted it.
# Permissions of an app that is not installed match nothing, so another site is unaffected.
CLIENT_VIEWS_OF_OWNED = [
    ("bpm", "view_sagainstance"),
    ("orders", "view_order"),
    ("payments", "view_customer"),
]


def take_views(apps, schema_editor):
    group = apps.get_model("auth", "Group").objects.filter(name=CLIENTS).first()
    if group is None:
        return
    permission = apps.get_model("auth", "Permission")
    for app_label, codename in CLIENT_VIEWS_OF_OWNED:
        group.permissions.remove(
            *permission.objects.filter(content_type__app_label=app_label, codename=codename)
        )


def give_views(apps, schema_editor):
    group = apps.get_model("auth", "Group").objects.filter(name=CLIENTS).first()
    if group is None:
        return
    permission = apps.get_model("auth", "Permission")
    for app_label, codename in CLIENT_VIEWS_OF_OWNED:
        group.permissions.add(
            *permission.objects.filter(content_type__app_label=app_label, codename=codename)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("bpm", "0008_saga_owner"),
        # None on orders or payments: bpm knows no participant. On a new database clients never
        # held these views, so the order does not matter; an existing one applied this long ago.
    ]

    operations = [migrations.RunPython(take_views, give_views)]
