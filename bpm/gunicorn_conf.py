"""gunicorn's configuration for production: `gunicorn -c python:bpm.gunicorn_conf bpm.wsgi`.

`manage.py serve` and deploy/bpm-web.service both use it, so the web app reads WEB_CONCURRENCY,
BPM_BIND (or PORT) and BPM_STOP_TIMEOUT the same way on one machine and on several.
"""

from __future__ import annotations

import os

from bpm import deployment, log_format

wsgi_app = "bpm.wsgi:application"
bind = [deployment.bind()]
workers = deployment.web_concurrency()
# SIGTERM: stop accepting, let requests in progress finish within this grace, then exit.
graceful_timeout = deployment.graceful_timeout(deployment.stop_timeout())
# One line per request on stdout (the journal, or serve's output under [web]).
accesslog = "-"
errorlog = "-"
# gunicorn's own lines (its errors, the access lines) in the format the product logs in
# (BPM_LOG_FORMAT, docs/logging.md); the settings validate both values when the app loads.
logconfig_dict = log_format.gunicorn_logconfig_dict(
    os.getenv("BPM_LOG_FORMAT", "text").strip().lower(),
    os.getenv("BPM_LOG_LEVEL", "INFO").strip().upper(),
)
# gunicorn >= 25.1's control socket has one default path per user, shared by every gunicorn.
control_socket_disable = True
