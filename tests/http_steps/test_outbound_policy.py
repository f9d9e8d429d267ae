"""bpm.outbound: which URLs and addresses may be called, checked before and at connect time."""

from __future__ import annotations

import httpx
import pytest

from bpm import outbound


@pytest.fixture
def allowed(settings):
    settings.BPM_HTTP_ALLOWED_HOSTS = ["payments.example", "hooks.example:8443", "10.1.0.0/16"]
    return settings


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "scheme 'file'"),
        ("gopher://payments.example/", "scheme 'gopher'"),
        ("ftp://payments.example/", "scheme 'ftp'"),
        ("https://user:pw@payments.example/", "credentials"),
        ("https://evil.example/", "not listed"),
        ("https://payments.example.evil.example/", "not listed"),
        ("https://hooks.example/", "not listed"),  # listed for port 8443 only
        ("https://169.254.169.254/latest/meta-data/", "not listed"),
        ("http://127.0.0.1:8000/", "not listed"),
        ("http://[::1]/", "not listed"),
        ("https://payments.example/a b", "whitespace"),
        ("https://payments.example/\r\nX: y", "control"),
        ("//payments.example/", "scheme"),
    ],
)
def test_urls_the_policy_refuses(allowed, url, reason):
    with pytest.raises(outbound.UrlRefused, match=reason):
        outbound.check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://payments.example/pay",
        "https://PAYMENTS.example./pay",
        "http://payments.example:8080/pay",
        "https://hooks.example:8443/x",
        "http://10.1.2.3/x",
    ],
)
def test_urls_the_policy_allows(allowed, url):
    outbound.check_url(url)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "169.254.169.254",
        "10.0.0.1",
        "192.168.1.1",
        "::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
    ],
)
def test_private_loopback_and_link_local_addresses_are_refused_unless_listed(allowed, address):
    with pytest.raises(outbound.UrlRefused, match="not public"):
        outbound.check_address(address, 443)


def test_a_listed_network_and_public_addresses_pass(allowed):
    outbound.check_address("10.1.200.7", 443)
    outbound.check_address("93.184.216.34", 443)


def test_the_address_is_checked_when_connecting_so_rebinding_cannot_reach_loopback(
    allowed, monkeypatch
):
    # The name passed the check; at connect time it resolves to this machine.
    answers = iter([["127.0.0.1"]])
    monkeypatch.setattr(outbound, "resolve", lambda host, port: next(answers))
    with pytest.raises(outbound.UrlRefused, match=r"127\.0\.0\.1 is not public"):
        outbound.request("GET", "http://payments.example:9/", timeout=2)


def test_a_connection_goes_to_the_address_that_passed(allowed, monkeypatch):
    # One public address refused by nothing but the network, one metadata address: only the
    # public one is dialled.
    dialled = []

    def connect(self, host, port, *args, **kwargs):
        dialled.append(host)
        raise httpx.ConnectError("no route")  # the outside world, faked

    addresses = ["169.254.169.254", "93.184.216.34"]
    monkeypatch.setattr(outbound, "resolve", lambda host, port: addresses)
    monkeypatch.setattr(outbound.httpcore.SyncBackend, "connect_tcp", connect)
    with pytest.raises(httpx.ConnectError):
        outbound.request("GET", "https://payments.example/", timeout=2)
    assert dialled == ["93.184.216.34"]


def test_a_response_over_the_limit_is_refused(payments, settings):
    settings.BPM_HTTP_MAX_RESPONSE_BYTES = 1000
    assert outbound.request("GET", payments.url + "/big/1000", timeout=5).content == b"x" * 1000
    with pytest.raises(outbound.ResponseTooLarge):
        outbound.request("GET", payments.url + "/big/1001", timeout=5)


def test_post_json_sends_json_and_returns_the_answer(payments):
    response = outbound.post_json(
        payments.url + "/payments",
        body=b'{"customer": "webhook", "amount": 1}',
        headers={"Authorization": "Bearer s3cret-payments-token", "Idempotency-Key": "k1"},
        timeout=5,
    )
    assert response.status_code == 201
    assert payments.requests[0]["headers"]["Content-Type"] == "application/json"


def test_post_json_follows_no_redirect(payments):
    payments.will("redirect:https://payments.example/elsewhere")
    response = outbound.post_json(
        payments.url + "/payments",
        body=b"{}",
        headers={"Authorization": "Bearer s3cret-payments-token", "Idempotency-Key": "k2"},
        timeout=5,
    )
    assert response.status_code == 307
    assert len(payments.requests) == 1


def test_proxies_from_the_environment_are_ignored(payments, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://192.0.2.1:3128")
    monkeypatch.setenv("ALL_PROXY", "http://192.0.2.1:3128")
    assert outbound.request("GET", payments.url + "/", timeout=5).status_code == 200


@pytest.mark.parametrize("entry", ["a b", "host:99999", "10.0.0.0/33", "-bad-.example", "[::1"])
def test_a_malformed_allowed_host_entry_is_an_error(entry):
    with pytest.raises(ValueError, match="BPM_HTTP_ALLOWED_HOSTS"):
        outbound.allowed_entries([entry])
