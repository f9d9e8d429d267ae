"""A pytest plugin, loaded first (pyproject's addopts): the test suite runs with DEBUG on.

DEBUG is off unless asked for, and the tests ask for it (development defaults: the file email
backend, no SECRET_KEY needed) before pytest-django loads the settings, so a bare `pytest` works as
`make test` does. The processes the tests start inherit it. A DEBUG already set is left alone.
"""

from __future__ import annotations

import os

os.environ.setdefault("DEBUG", "true")
