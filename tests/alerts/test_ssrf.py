"""SSRF: local, private, link-local and metadata targets are refused at save and at send time."""

import socket

import pytest
from django.core.exceptions import ValidationError

from alerts import safety, services
from alerts.models import ActionKind, DeliveryAttempt

from .conftest import endpoint_for, falling_accounts, webhook_rule

REFUSED = [
    "https://127.0.0.1/hook",
    "https://127.1.2.3:8443/hook",
    "https://10.0.0.5/hook",
    "https://192.168.1.1/",
    "https://172.16.0.1/",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[fd00:ec2::254]/",
    "https://0.0.0.0/",
    "https://100.64.0.1/",
    "https://localhost/hook",  # a host name that resolves to the loopback
]


@pytest.fixture
def local_off(settings):
    settings.ALERTS_ALLOW_LOCAL_TARGETS = False


@pytest.mark.parametrize("url", REFUSED)
def test_local_targets_are_refused(local_off, url):
    with pytest.raises(safety.UnsafeTarget, match="public hosts"):
        safety.check_url(url)


def test_a_hostname_resolving_to_a_private_address_is_refused(local_off, monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", _resolver({"intranet.example.com": "10.1.2.3"}))
    with pytest.raises(safety.UnsafeTarget, match="resolves to 10.1.2.3, a private address"):
        safety.check_url("https://intranet.example.com/hook")


def test_one_private_answer_among_public_ones_is_refused(local_off, monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", _resolver({"mixed.example.com": ["93.184.216.34", "127.0.0.1"]}))
    with pytest.raises(safety.UnsafeTarget, match="loopback"):
        safety.check_url("https://mixed.example.com/hook")


def test_plain_http_is_refused_in_production(local_off):
    with pytest.raises(safety.UnsafeTarget, match="https"):
        safety.check_url("http://93.184.216.34/hook")


@pytest.mark.parametrize("url", ["ftp://example.com/", "https://user:pw@example.com/", "not a url", "https:///x"])
def test_malformed_urls_are_refused(local_off, url):
    with pytest.raises(safety.UnsafeTarget):
        safety.check_url(url)


def test_a_public_address_passes(local_off, monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", _resolver({"hooks.example.com": "93.184.216.34"}))
    target = safety.resolve("https://hooks.example.com/x?y=1")
    assert (target.address, target.host, target.port, target.path) == (
        "93.184.216.34",
        "hooks.example.com",
        443,
        "/x?y=1",
    )


def test_saving_an_endpoint_or_slack_url_checks_it(tenant, owner, local_off):
    with pytest.raises(ValidationError) as error:
        services.endpoint_create(tenant=tenant, name="x", url="https://169.254.169.254/", owner=owner)
    assert "metadata" in str(error.value.message_dict["url"])
    with pytest.raises(ValidationError) as error:
        services.rule_save(
            tenant=tenant,
            name="r",
            subject="accounts",
            trigger="at_risk",
            actions=[{"kind": ActionKind.SLACK, "slack_url": "https://[::1]/services/x"}],
        )
    assert "loopback" in str(error.value.message_dict["slack_url"])


def test_dns_rebinding_is_caught_at_send_time(
    tenant, owner, receiver, settings, monkeypatch, django_capture_on_commit_callbacks
):
    # Saved while the name resolved to a public address; at send time it resolves to the loopback.
    settings.ALERTS_ALLOW_LOCAL_TARGETS = False
    port = receiver.server.server_address[1]
    answers = {"rebind.example.com": "93.184.216.34"}
    monkeypatch.setattr(socket, "getaddrinfo", _resolver(answers))
    falling_accounts(tenant)
    endpoint, _ = endpoint_for(tenant, f"https://rebind.example.com:{port}/hook", owner)
    webhook_rule(tenant, endpoint)
    answers["rebind.example.com"] = "127.0.0.1"
    with django_capture_on_commit_callbacks(execute=True):
        services.evaluate_days(tenant, [tenant.today()])
    assert receiver.requests == []
    attempt = DeliveryAttempt.objects.get(tenant=tenant)
    assert attempt.status_code is None and "Refused" in attempt.error and "loopback" in attempt.error


def test_the_sender_connects_to_the_checked_address(settings, receiver, monkeypatch):
    # With local targets allowed, a name is resolved once and that address is the one connected to.
    port = receiver.server.server_address[1]
    monkeypatch.setattr(socket, "getaddrinfo", _resolver({"receiver.test": "127.0.0.1"}))
    response = safety.post_json(f"http://receiver.test:{port}/x", b"{}", {})
    assert response.status == 200
    assert receiver.requests[0]["headers"]["Host"] == f"receiver.test:{port}"


def test_the_response_read_is_capped(settings, receiver):
    settings.ALERTS_RESPONSE_LIMIT = 8
    response = safety.post_json(receiver.url, b"{}", {})
    assert len(response.excerpt) == 8


def _resolver(answers):
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        values = answers[host] if isinstance(answers[host], list) else [answers[host]]
        return [(socket.AF_INET6 if ":" in v else socket.AF_INET, socket.SOCK_STREAM, 6, "", (v, port)) for v in values]

    return getaddrinfo
