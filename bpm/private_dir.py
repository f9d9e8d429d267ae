"""The process's files are private to its user: var/ holds tokens, sessions and password hashes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

# Files 0600, directories 0700: nobody but the owner reads the SQLite file (and its -wal and -shm),
# the embedded Redis's socket, config and log, or the mail written to files.
PRIVATE_UMASK = 0o077


def make_private(directory: Path) -> None:
    """Create `directory` (0700) or take group and other access away from it; set the umask.

    A directory that others share by design (sticky, like /tmp) is refused rather than locked.
    """
    os.umask(PRIVATE_UMASK)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = directory.stat().st_mode
    if mode & stat.S_ISVTX:
        raise PermissionError(
            f"{directory} is a shared directory (sticky bit set); use a directory of its own"
        )
    if stat.S_IMODE(mode) & 0o077:
        directory.chmod(stat.S_IMODE(mode) & 0o700)
