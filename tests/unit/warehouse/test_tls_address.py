"""TLS to the warehouse without a server: the settings, the one address rule, the generated certificate."""

from __future__ import annotations

import ipaddress
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from adapters.warehouse.address import configured_address, embedded_address, parse_address
from adapters.warehouse.client import tls_options
from adapters.warehouse.tls import RENEW_BEFORE, VALIDITY, generated_ca_file, server_tls
from dashboards.provisioning import datasource_document, render_yaml
from tickwave.config import Settings, load_settings
from tickwave.errors import ConfigurationError

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://abc.eu-west-1.aws.clickhouse.cloud:8443", ("https", "abc.eu-west-1.aws.clickhouse.cloud", 8443, "")),
        ("https://warehouse.example", ("https", "warehouse.example", 8443, "")),
        ("http://10.0.0.5", ("http", "10.0.0.5", 8123, "")),
        ("https://proxy.example/clickhouse/", ("https", "proxy.example", 8443, "clickhouse")),
    ],
)
def test_parse_address_when_url_given_then_scheme_host_default_port_and_path(
    url: str, expected: tuple[str, str, int, str]
) -> None:
    address = parse_address(url, Path("/ca.pem"))

    assert (address.scheme, address.host, address.port, address.path) == expected
    assert address.ca_file == (Path("/ca.pem") if expected[0] == "https" else None)


@pytest.mark.parametrize("url", ["ftp://host", "https://", "clickhouse://host:9000"])
def test_parse_address_when_not_http_then_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError, match="expected http"):
        parse_address(url)


@pytest.mark.parametrize(
    ("clickhouse", "problem"),
    [
        ({"tls_cert_file": "/c.pem"}, "go together"),
        ({"tls_key_file": "/k.pem"}, "go together"),
        ({"tls": True, "url": "http://warehouse.example:8123"}, "not https"),
    ],
)
def test_settings_when_tls_is_inconsistent_then_refused(clickhouse: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        load_settings(clickhouse=clickhouse)


def test_address_when_tls_is_off_then_plain_http_on_loopback(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path)

    address = configured_address(settings)

    assert (address.url, address.ca_file, address.ssl_context()) == ("http://127.0.0.1:18123", None, None)
    assert tls_options(address) == {}


def test_address_when_embedded_tls_then_https_verified_against_the_generated_ca(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, clickhouse={"tls": True, "port": 18443})

    address = configured_address(settings)

    assert (address.url, address.ca_file) == ("https://127.0.0.1:18443", generated_ca_file(settings))
    assert embedded_address(settings, 1234).url == "https://127.0.0.1:1234"


@pytest.mark.parametrize(
    ("clickhouse", "ca_file"),
    [
        ({"url": "https://abc.clickhouse.cloud:8443"}, None),  # a public CA: the system's trust store
        ({"url": "https://warehouse.internal:8443", "ca_file": "/etc/tickwave/ca.pem"}, Path("/etc/tickwave/ca.pem")),
        ({"tls": True, "tls_cert_file": "/c.pem", "tls_key_file": "/k.pem"}, None),
        ({"tls": True, "tls_cert_file": "/c.pem", "tls_key_file": "/k.pem", "ca_file": "/ca.pem"}, Path("/ca.pem")),
    ],
)
def test_address_when_ca_is_configured_or_not_then_that_ca_or_the_system_store(
    tmp_path: Path, clickhouse: dict[str, object], ca_file: Path | None
) -> None:
    address = configured_address(load_settings(state_dir=tmp_path, clickhouse=clickhouse))

    assert (address.scheme, address.ca_file) == ("https", ca_file)


def test_server_tls_when_tls_is_off_or_external_then_none(tmp_path: Path) -> None:
    assert server_tls(load_settings(state_dir=tmp_path), create=True) is None
    assert server_tls(load_settings(state_dir=tmp_path, clickhouse={"url": "https://x.example"}), create=True) is None
    assert not (tmp_path / "tls").exists()


def test_server_tls_when_generated_then_ca_signs_a_loopback_certificate_and_the_key_is_private(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, clickhouse={"tls": True})

    files = server_tls(settings, create=True, now=NOW)

    assert files is not None
    ca = x509.load_pem_x509_certificate(generated_ca_file(settings).read_bytes())
    server = x509.load_pem_x509_certificate(files.cert_file.read_bytes())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert server.not_valid_after_utc - NOW == VALIDITY
    assert stat.S_IMODE(files.key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.key_file.parent.stat().st_mode) == 0o700


def test_server_tls_when_valid_then_kept_and_when_near_expiry_then_all_renewed(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, clickhouse={"tls": True})
    files = server_tls(settings, create=True, now=NOW)
    assert files is not None
    first = (files.cert_file.read_bytes(), generated_ca_file(settings).read_bytes())

    server_tls(settings, create=True, now=NOW + VALIDITY - RENEW_BEFORE - timedelta(days=1))
    kept = (files.cert_file.read_bytes(), generated_ca_file(settings).read_bytes())
    server_tls(settings, create=True, now=NOW + VALIDITY - RENEW_BEFORE + timedelta(days=1))
    renewed = (files.cert_file.read_bytes(), generated_ca_file(settings).read_bytes())

    assert kept == first
    assert renewed[0] != first[0] and renewed[1] != first[1]


def test_server_tls_when_not_generated_yet_or_configured_file_missing_then_configuration_error(tmp_path: Path) -> None:
    generated = load_settings(state_dir=tmp_path, clickhouse={"tls": True})
    configured = load_settings(
        state_dir=tmp_path, clickhouse={"tls": True, "tls_cert_file": tmp_path / "no.pem", "tls_key_file": tmp_path}
    )

    with pytest.raises(ConfigurationError, match="start the warehouse once"):
        server_tls(generated)
    with pytest.raises(ConfigurationError, match="does not exist"):
        server_tls(configured, create=True)


def test_grafana_datasource_when_external_https_with_ca_then_secure_and_the_ca_inline(tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    settings = Settings(clickhouse={"url": "https://warehouse.internal:8443/ch", "ca_file": ca_file})

    document = yaml.safe_load(render_yaml(datasource_document(settings)))

    source, _prometheus = document["datasources"]
    assert source["jsonData"]["secure"] is True
    assert source["jsonData"]["tlsAuthWithCACert"] is True
    assert (source["jsonData"]["host"], source["jsonData"]["port"], source["jsonData"]["path"]) == (
        "warehouse.internal",
        8443,
        "/ch",
    )
    assert source["secureJsonData"]["tlsCACert"] == ca_file.read_text()


def test_grafana_datasource_when_cloud_with_public_ca_then_secure_without_a_ca() -> None:
    settings = Settings(clickhouse={"url": "https://abc.clickhouse.cloud:8443"})

    source, _prometheus = datasource_document(settings)["datasources"]

    assert (source["jsonData"]["secure"], source["jsonData"]["port"]) == (True, 8443)
    assert "tlsAuthWithCACert" not in source["jsonData"] and "tlsCACert" not in source["secureJsonData"]
