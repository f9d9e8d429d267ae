"""Static files under hashed, compressed names once collectstatic has run; plain names before."""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class HashedStaticStorage(CompressedManifestStaticFilesStorage):
    """WhiteNoise's hashed and gzipped files, falling back to plain names without a manifest.

    Without the manifest (collectstatic has not run here: development, and the tests' runserver
    with DEBUG off) every name would be an error; the plain name is what runserver serves from
    the apps' folders. `manage.py serve` always collects first, so production gets hashed names.
    """

    def stored_name(self, name: str) -> str:
        if not self.hashed_files:
            return name
        return str(super().stored_name(name))
