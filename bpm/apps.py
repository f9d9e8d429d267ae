from __future__ import annotations

from django.apps import AppConfig


class BpmConfig(AppConfig):
    name = "bpm"
    verbose_name = "Sagas"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from bpm import registry

        registry.autodiscover()
        post_migrate.connect(sync_after_migrate, sender=self)
        # Every app's signal, after auth has made that app's permissions.
        post_migrate.connect(sync_groups_after_migrate)


def sync_after_migrate(using: str = "default", **kwargs: object) -> None:
    """Make a new definition version for every declaration that changed (runs after migrate)."""
    from bpm import definitions, permissions

    definitions.steps_of.cache_clear()
    permissions.ensure_task_groups(using=using)
    definitions.sync_all()


def sync_groups_after_migrate(
    app_config: AppConfig, using: str = "default", **kwargs: object
) -> None:
    """Keep the viewers, operators and clients groups' permissions up to date."""
    from bpm import permissions

    permissions.sync_groups(app_config.label, using=using)
