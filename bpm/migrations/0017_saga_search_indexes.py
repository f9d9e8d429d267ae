"""The search's indexes on PostgreSQL: GIN on the input and context (jsonpath `@?`, any value or
a key path) and a trigram GIN on the stuck error (`icontains`). SQLite has no GIN: the search
reads its JSON with json_each/json_tree there (docs/dashboard.md, "Search")."""

from django.db import migrations

INDEXES = {
    "saga_input_search": "USING gin (input)",
    "saga_context_search": "USING gin (context)",
    # Django's icontains on PostgreSQL is UPPER(column::text) LIKE UPPER(pattern).
    "saga_stuck_error_search": "USING gin (UPPER(stuck_error::text) gin_trgm_ops)",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, definition in INDEXES.items():
        # CONCURRENTLY: building them over a big table must not block the engine's writes.
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON bpm_sagainstance {definition}"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("bpm", "0016_stuck_cause_and_error_code")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
