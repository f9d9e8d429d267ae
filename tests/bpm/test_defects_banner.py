"""`make run`'s banner with the logins: kept in $BPM_VAR_DIR/run.txt, and printed again last,
once the web server answers."""

from __future__ import annotations

import http.server
import threading
from io import StringIO
from pathlib import Path

from subprocesses import free_port

from bpm.management.commands.runstack import BANNER_FILE, Command


def command() -> tuple[Command, StringIO]:
    out = StringIO()
    return Command(stdout=out), out


def test_the_banner_is_written_to_a_file_in_the_var_dir(settings, tmp_path):
    settings.VAR_DIR, settings.DEBUG = tmp_path, True
    runstack, out = command()
    banner = runstack.print_banner(port=8123, dev_login=True, started_redis=False)
    written = (tmp_path / BANNER_FILE).read_text()
    assert "http://127.0.0.1:8123/admin/dashboard/" in written
    assert "admin / admin" in written and "operator/operator (operators)" in written
    assert written.strip() == banner.strip() and banner in out.getvalue()
    assert (tmp_path / BANNER_FILE).stat().st_mode & 0o077 == 0


def test_the_banner_is_printed_again_once_the_web_server_answers(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    port = free_port()
    server = http.server.HTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler)
    runstack, out = command()
    started = threading.Timer(0.3, server.serve_forever)
    started.start()
    try:
        url = f"http://127.0.0.1:{port}/nothing-here"  # a 404 is an answer too
        assert runstack.repeat_banner_when_up(url, "\n  Dashboard   here\n", settle=0)
    finally:
        server.shutdown()
        server.server_close()
    printed = out.getvalue()
    assert printed.index("Ready.") < printed.index("Dashboard   here")
    assert str(Path(tmp_path) / BANNER_FILE) in printed


def test_nothing_is_printed_again_when_the_web_server_never_answers(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    runstack, out = command()
    url = f"http://127.0.0.1:{free_port()}/"
    assert not runstack.repeat_banner_when_up(url, "banner", timeout=0.5, settle=0)
    assert out.getvalue() == ""
