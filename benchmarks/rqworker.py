"""`manage.py rqworker` with the benchmark's handlers registered (the worker the benchmarks start).

Run from the checkout's root: `python -m benchmarks.rqworker <rqworker arguments>`.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpm.settings")

import django

django.setup()

from django.core.management import execute_from_command_line  # noqa: E402

import benchmarks.handlers  # noqa: E402, F401 - registers bench.local and bench.remote

if __name__ == "__main__":
    execute_from_command_line(["manage.py", "rqworker", *sys.argv[1:]])
