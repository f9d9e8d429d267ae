"""Static files under hashed, compressed names once collectstatic has run; plain names before."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

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

    def compress_files(self, paths: Iterable[str]) -> Iterator[tuple[str, str]]:
        """Compress like WhiteNoise, then give each compressed copy the static files' mode.

        WhiteNoise writes them with open(), under the process umask (077, see private_dir), so a
        web server running as another user could read a file but not its gzipped copy.
        """
        for name, compressed_name in super().compress_files(paths):
            if self.file_permissions_mode is not None:
                os.chmod(self.path(compressed_name), self.file_permissions_mode)
            yield name, compressed_name
