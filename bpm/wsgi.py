"""WSGI entry point: `gunicorn bpm.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpm.settings")

application = get_wsgi_application()
