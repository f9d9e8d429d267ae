"""The production process set's variables (bpm.deployment): values, defaults and refusals."""

from __future__ import annotations

import pytest

from bpm import deployment
from bpm.supervisor import Backoff


def test_gunicorn_binds_to_loopback_on_port_8000_by_default(monkeypatch) -> None:
    monkeypatch.delenv("BPM_BIND", raising=False)
    monkeypatch.delenv("PORT", raising=False)
    assert deployment.bind() == "127.0.0.1:8000"


def test_port_moves_the_default_address_and_bpm_bind_replaces_it(monkeypatch) -> None:
    monkeypatch.setenv("PORT", "9000")
    assert deployment.bind() == "127.0.0.1:9000"
    for address in ["0.0.0.0:80", "[::1]:8000", "web.internal:8000", "unix:/run/bpm/web.sock"]:
        monkeypatch.setenv("BPM_BIND", address)
        assert deployment.bind() == address


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("BPM_BIND", "8000", "BPM_BIND='8000' is not host:port"),
        ("BPM_BIND", "0.0.0.0:0", "BPM_BIND='0.0.0.0:0': the port must be 1-65535"),
        ("BPM_BIND", "unix:web.sock", "a socket needs an absolute path"),
        ("PORT", "http", "PORT='http' is not a port number"),
        ("PORT", "65536", "PORT='65536' is not a port number"),
    ],
)
def test_an_unusable_address_is_refused_naming_the_variable(
    monkeypatch, variable, value, message
) -> None:
    monkeypatch.delenv("BPM_BIND", raising=False)
    monkeypatch.setenv(variable, value)
    with pytest.raises(deployment.ConfigurationError, match=message):
        deployment.bind()


@pytest.mark.parametrize("function", ["web_concurrency", "rq_workers", "stop_timeout"])
@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_process_counts_and_the_stop_timeout_are_whole_numbers_from_one(
    monkeypatch, function, value
) -> None:
    variable = {
        "web_concurrency": "WEB_CONCURRENCY",
        "rq_workers": "BPM_WORKERS",
        "stop_timeout": "BPM_STOP_TIMEOUT",
    }[function]
    monkeypatch.setenv(variable, value)
    with pytest.raises(deployment.ConfigurationError, match=variable):
        getattr(deployment, function)()
    monkeypatch.setenv(variable, "3")
    assert getattr(deployment, function)() == 3
    monkeypatch.delenv(variable)
    assert getattr(deployment, function)() >= 1


def test_gunicorn_finishes_requests_a_second_before_the_stop_timeout() -> None:
    assert deployment.graceful_timeout(30) == 29
    assert deployment.graceful_timeout(1) == 1


def test_a_child_that_keeps_dying_waits_longer_each_time_up_to_a_bound() -> None:
    backoff = Backoff(first=1, longest=30, stable=60)
    assert [backoff.after(ran_for=0.5) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_child_that_ran_for_a_while_restarts_after_the_first_wait_again() -> None:
    backoff = Backoff(first=1, longest=30, stable=60)
    for _ in range(4):
        backoff.after(ran_for=0.5)
    assert backoff.after(ran_for=120) == 1
    assert backoff.after(ran_for=0.5) == 2
