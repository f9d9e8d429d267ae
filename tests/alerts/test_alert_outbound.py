"""bpm.outbound: an operator's URL is called only on an allowed host, by http(s), no redirects."""

from __future__ import annotations

import pytest

from bpm import outbound


@pytest.fixture(autouse=True)
def allowed(settings, monkeypatch):
    settings.BPM_HTTP_ALLOWED_HOSTS = ["hooks.example.com", "127.0.0.1", "169.254.10.10"]
    # The outside world's DNS: hooks.example.com is a public address.
    real = outbound.socket.getaddrinfo

    def resolve(host, port, *args, **kwargs):
        if host == "hooks.example.com":
            return [(2, 1, 6, "", ("93.184.215.14", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(outbound.socket, "getaddrinfo", resolve)


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com/bpm", "http://HOOKS.example.com:8443/x?y=1", "http://127.0.0.1:9/"],
)
def test_it_accepts_http_and_https_urls_to_allowed_hosts(url):
    outbound.check_url(url)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("file:///etc/passwd", "only http and https"),
        ("gopher://hooks.example.com/", "only http and https"),
        ("ftp://hooks.example.com/", "only http and https"),
        ("https://evil.example.net/", "'evil.example.net' .* is not listed"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is not listed"),
        ("http://[fd00:ec2::254]/", "fd00:ec2::254 is not listed"),
        ("http://localhost/", "'localhost' .* is not listed"),
        ("https://user:pw@hooks.example.com/", "credentials in a URL are refused"),
        ("https:///nohost", "names no host"),
        ("http://hooks.example.com:99999/", "not a valid URL"),
        ("not a url", "may not hold whitespace"),
    ],
)
def test_it_refuses_other_schemes_hosts_and_credentials_with_a_reason(url, says):
    with pytest.raises(outbound.UrlRefused, match=says):
        outbound.check_url(url)


def test_a_listed_name_that_resolves_to_a_link_local_address_is_refused_on_connecting(
    settings, monkeypatch
):
    settings.BPM_HTTP_ALLOWED_HOSTS = ["metadata.internal"]
    monkeypatch.setattr(
        outbound.socket,
        "getaddrinfo",
        lambda *args, **kwargs: [(2, 1, 6, "", ("169.254.169.254", 80))],
    )
    # The name is allowed; the address it resolves to is checked when the connection is made.
    outbound.check_url("http://metadata.internal/")
    with pytest.raises(outbound.UrlRefused, match=r"169\.254\.169\.254 is not public"):
        outbound.post_json("http://metadata.internal/", body=b"{}", headers={}, timeout=1)


def test_a_link_local_address_listed_by_itself_is_allowed():
    outbound.check_url("http://169.254.10.10/hook")


def test_nothing_is_allowed_when_no_host_is_listed(settings):
    settings.BPM_HTTP_ALLOWED_HOSTS = []
    with pytest.raises(outbound.UrlRefused, match="listed names: none"):
        outbound.check_url("https://hooks.example.com/")


def test_post_json_checks_the_url_before_calling():
    with pytest.raises(outbound.UrlRefused):
        outbound.post_json("https://evil.example.net/", body=b"{}", headers={}, timeout=1)


def test_post_json_does_not_follow_a_redirect(receiver):
    receiver.statuses = [302]
    receiver.redirect_to = "http://169.254.169.254/latest/meta-data/"
    response = outbound.post_json(receiver.url, body=b'{"a": 1}', headers={"X-A": "b"}, timeout=5)
    assert response.status_code == 302
    assert len(receiver.received) == 1
    assert receiver.received[0].headers["Content-Type"] == "application/json"
    assert receiver.received[0].headers["X-A"] == "b"
