"""The chat client's connection pool applies the proxy and CA settings requests would."""

from __future__ import annotations

import pytest
import urllib3

from genai_gate.errors import ConfigError
from genai_gate.targets.http_chat import _pool


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def test_a_proxy_in_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    pool = _pool("https://api.example.com/v1/chat/completions", 30)
    assert isinstance(pool, urllib3.ProxyManager)
    assert pool.proxy is not None and pool.proxy.host == "proxy.internal"


def test_no_proxy_wins_for_its_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "example.com,127.0.0.1")
    pool = _pool("https://api.example.com/v1/chat/completions", 30)
    assert not isinstance(pool, urllib3.ProxyManager)


def test_a_ca_bundle_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/corp/ca.pem")
    pool = _pool("https://api.example.com/v1/chat/completions", 30)
    assert pool.connection_pool_kw["ca_certs"] == "/etc/corp/ca.pem"
    # and urllib3 neither retries nor follows redirects: the retry policy is ours
    retries = pool.connection_pool_kw["retries"]
    assert retries.total is False and retries.redirect == 0


def test_a_proxy_without_a_scheme_is_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "proxy.internal:3128")
    pool = _pool("https://api.example.com/v1/chat/completions", 30)
    assert isinstance(pool, urllib3.ProxyManager) and pool.proxy is not None
    assert (pool.proxy.scheme, pool.proxy.host, pool.proxy.port) == ("http", "proxy.internal", 3128)


def test_a_proxy_s_credentials_are_sent_as_proxy_authorization(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://ci%40corp:s3cret@proxy.internal:3128")
    pool = _pool("https://api.example.com/v1/chat/completions", 30)
    assert pool.proxy_headers == urllib3.make_headers(proxy_basic_auth="ci@corp:s3cret")


def test_a_socks_proxy_is_a_config_error_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://proxy.internal:1080")
    with pytest.raises(ConfigError, match="socks5://") as err:
        _pool("https://api.example.com/v1/chat/completions", 30)
    assert "NO_PROXY" in err.value.fix
