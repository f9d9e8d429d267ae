"""Archives of finished sagas: one gzip file, one JSON line per saga with everything it owns.

A line holds the saga row and its step runs, events and barrier rows, each as its columns
(foreign keys as ids, times in ISO 8601 to the microsecond). Restoring puts the rows back with
their own ids, so the timeline, the audit trail and the API read them as before; a saga already
present is left alone, which makes restoring twice harmless. Definitions are not archived:
published versions are immutable and outlive their sagas, so a line refers to them by id.
"""

from __future__ import annotations

import gzip
import json
import os
import uuid
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction

from bpm.models import (
    FINISHED_STATUSES,
    Barrier,
    SagaDefinition,
    SagaEvent,
    SagaInstance,
    StepDefinition,
    StepRun,
)

FORMAT = "bpm-saga-archive"
VERSION = 1
# Sagas read, written or restored together: one query per table per chunk.
CHUNK = 500
CHILDREN: dict[str, type[models.Model]] = {
    "step_runs": StepRun,
    "events": SagaEvent,
    "barriers": Barrier,
}


class ArchiveError(Exception):
    """The file is not an archive, or one of its lines cannot be restored."""


@dataclass
class RestoreReport:
    restored: int = 0
    already_present: int = 0

    def __str__(self) -> str:
        return f"restored: {self.restored}, already present: {self.already_present}"


# --- writing ----------------------------------------------------------------------------------


def lines_of(saga_ids: Sequence[uuid.UUID]) -> Iterator[dict[str, Any]]:
    """Return the archive line of each saga, reading each table once per chunk of sagas."""
    for start in range(0, len(saga_ids), CHUNK):
        chunk = list(saga_ids[start : start + CHUNK])
        sagas = SagaInstance.objects.filter(pk__in=chunk).order_by("finished_at", "id").values()
        children: dict[str, dict[Any, list[dict[str, Any]]]] = {}
        for key, model in CHILDREN.items():
            by_saga: dict[Any, list[dict[str, Any]]] = {}
            for row in model._default_manager.filter(saga_id__in=chunk).order_by("id").values():
                by_saga.setdefault(row["saga_id"], []).append(row)
            children[key] = by_saga
        for saga in sagas:
            line: dict[str, Any] = {"archive": FORMAT, "version": VERSION, "saga": saga}
            for key in CHILDREN:
                line[key] = children[key].get(saga["id"], [])
            yield line


def write(path: Path, saga_ids: Sequence[uuid.UUID]) -> int:
    """Write the archive of these sagas to `path` (a new file); return how many it holds.

    The file appears under its name only once complete and on disk (written aside, synced,
    renamed), so a saga is deleted only after an archive that holds it exists.
    """
    if path.exists():
        raise ArchiveError(
            f"{path} already exists: choose a new file, an archive is never replaced"
        )
    partial = path.with_name(f".{path.name}.partial")
    count = 0
    try:
        with partial.open("wb") as raw:
            with gzip.GzipFile(filename=path.name, mode="wb", fileobj=raw) as archive:
                for line in lines_of(saga_ids):
                    archive.write(json.dumps(line, default=_encode).encode() + b"\n")
                    count += 1
            raw.flush()
            os.fsync(raw.fileno())
        partial.rename(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    _sync_directory(path.parent)
    return count


def _encode(value: Any) -> Any:
    # Not DjangoJSONEncoder: it cuts times to milliseconds, and events are ordered by microsecond.
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot archive a {type(value).__name__}")


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# --- reading and restoring --------------------------------------------------------------------


@dataclass
class Entry:
    """One validated line: the rows to insert, not yet saved."""

    number: int
    saga: SagaInstance
    children: dict[str, list[models.Model]]


def read(path: Path) -> Iterator[Entry]:
    """Return the validated lines of the archive at `path`; raise ArchiveError at a bad one."""
    try:
        with gzip.open(path, "rb") as archive:
            for number, raw in enumerate(archive, 1):
                yield _entry(number, raw)
    except FileNotFoundError:
        raise ArchiveError("no such file") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise ArchiveError(
            f"not a complete gzip file ({exc}): not an archive of archive_sagas"
        ) from None


def _entry(number: int, raw: bytes) -> Entry:
    try:
        line = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArchiveError(f"line {number} is not JSON ({exc}): not an archive line") from None
    if not isinstance(line, dict) or line.get("archive") != FORMAT:
        raise ArchiveError(f'line {number} is not a saga archive line (no "archive": {FORMAT!r})')
    if line.get("version") != VERSION:
        raise ArchiveError(
            f"line {number}: archive version {line.get('version')!r}; this version reads {VERSION}"
        )
    unknown = set(line) - {"archive", "version", "saga", *CHILDREN}
    if unknown:
        raise ArchiveError(f"line {number}: unknown key(s) {', '.join(sorted(unknown))}")
    try:
        saga = _build(SagaInstance, line.get("saga"))
        if saga.status not in FINISHED_STATUSES:
            raise ArchiveError(f"status {saga.status!r}: only finished sagas are restored")
        children: dict[str, list[models.Model]] = {}
        for key, model in CHILDREN.items():
            rows = line.get(key)
            if not isinstance(rows, list):
                raise ArchiveError(f"{key!r} must be a list")
            children[key] = [_build(model, row) for row in rows]
            strays = [row for row in children[key] if row.saga_id != saga.pk]  # type: ignore[attr-defined]
            if strays:
                raise ArchiveError(f"{key!r} holds rows of another saga")
    except ArchiveError as exc:
        raise ArchiveError(f"line {number}: {exc}") from None
    return Entry(number, saga, children)


def _build(model: type[models.Model], data: Any) -> Any:
    """Return an unsaved row from its archived columns, each checked by its field."""
    name = model._meta.model_name
    if not isinstance(data, dict):
        raise ArchiveError(f"{name} must be an object")
    fields = {field.attname: field for field in model._meta.concrete_fields}
    unknown = set(data) - set(fields)
    if unknown:
        raise ArchiveError(f"{name} has unknown column(s) {', '.join(sorted(unknown))}")
    values = {}
    for attname, field in fields.items():
        if attname not in data:
            # A column added after the archive was written takes its default.
            if not field.has_default() and not field.null:
                raise ArchiveError(f"{name} lacks the column {attname!r}")
            values[attname] = field.get_default()
            continue
        value = data[attname]
        if value is None and not field.null:
            raise ArchiveError(f"{name}.{attname} may not be null")
        try:
            values[attname] = None if value is None else field.to_python(value)
        except ValidationError as exc:
            raise ArchiveError(f"{name}.{attname}: {'; '.join(exc.messages)}") from None
    return model(**values)


def restore(path: Path) -> RestoreReport:
    """Put back every saga of the archive not already present; return what was done.

    Each chunk of lines is validated before any of it is written, and written in one
    transaction; a bad line stops the restore there (the lines before it are restored, and
    restoring the file again is harmless).
    """
    report = RestoreReport()
    chunk: list[Entry] = []
    for entry in read(path):
        chunk.append(entry)
        if len(chunk) == CHUNK:
            _restore_chunk(chunk, report)
            chunk = []
    if chunk:
        _restore_chunk(chunk, report)
    return report


def _restore_chunk(entries: list[Entry], report: RestoreReport) -> None:
    present = set(
        SagaInstance.objects.filter(pk__in=[e.saga.pk for e in entries]).values_list(
            "pk", flat=True
        )
    )
    missing = [e for e in entries if e.saga.pk not in present]
    report.already_present += len(entries) - len(missing)
    if not missing:
        return
    _check_references(missing)
    try:
        with transaction.atomic():
            _insert(missing)
    except IntegrityError:
        # Find the line that cannot go back (its idempotency key was taken by a newer saga,
        # say) and name it; the lines before it go back one by one.
        for entry in missing:
            try:
                with transaction.atomic():
                    _insert([entry])
            except IntegrityError as exc:
                raise ArchiveError(f"line {entry.number}: cannot be restored: {exc}") from None
            report.restored += 1
        return
    report.restored += len(missing)


def _check_references(entries: Iterable[Entry]) -> None:
    """Refuse a line whose definition or step is gone; forget an owner whose account is gone."""
    entries = list(entries)
    definitions = {e.saga.definition_id for e in entries}
    known = set(SagaDefinition.objects.filter(pk__in=definitions).values_list("pk", flat=True))
    steps = {run.step_id for e in entries for run in e.children["step_runs"]}  # type: ignore[attr-defined]
    known_steps = set(StepDefinition.objects.filter(pk__in=steps).values_list("pk", flat=True))
    owners = {e.saga.owner_id for e in entries if e.saga.owner_id is not None}
    known_owners = set(get_user_model().objects.filter(pk__in=owners).values_list("pk", flat=True))
    for entry in entries:
        if entry.saga.definition_id not in known:
            raise ArchiveError(
                f"line {entry.number}: its saga definition (id {entry.saga.definition_id}) is gone"
            )
        lost = {r.step_id for r in entry.children["step_runs"]} - known_steps  # type: ignore[attr-defined]
        if lost:
            raise ArchiveError(f"line {entry.number}: its step definitions {sorted(lost)} are gone")
        if entry.saga.owner_id not in known_owners:
            # As the foreign key says (SET_NULL): the saga outlives its owner's account.
            entry.saga.owner_id = None


def _insert(entries: list[Entry]) -> None:
    SagaInstance.objects.bulk_create([e.saga for e in entries])
    for key, model in CHILDREN.items():
        rows = [row for e in entries for row in e.children[key]]
        model._default_manager.bulk_create(rows, batch_size=CHUNK)
