"""SSLConfig: TF Serving's message (declared in-project), reading and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfsuite.serving_configs.errors import ConfigError
from tfsuite.serving_configs.ssl import SSLConfig, parse_ssl_config, read_ssl_config

_KEY = "-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n"
_CERT = "-----BEGIN CERTIFICATE-----\\nBBBB\\n-----END CERTIFICATE-----\\n"


def test_message_schema_matches_tf_serving() -> None:
    desc = SSLConfig.DESCRIPTOR
    assert desc.full_name == "tensorflow.serving.SSLConfig"
    assert {f.name: (f.number, f.type) for f in desc.fields} == {
        "server_key": (1, desc.fields[0].TYPE_STRING),
        "server_cert": (2, desc.fields[0].TYPE_STRING),
        "custom_ca": (3, desc.fields[0].TYPE_STRING),
        "client_verify": (4, desc.fields[0].TYPE_BOOL),
    }


def test_read_documented_example(tmp_path: Path) -> None:
    path = tmp_path / "ssl.config"
    path.write_text(
        f'server_key: "{_KEY}"\nserver_cert: "{_CERT}"\ncustom_ca: "{_CERT}"\nclient_verify: true\n'
    )
    config = read_ssl_config(path)
    assert config.server_key.startswith("-----BEGIN PRIVATE KEY-----\n")
    assert config.server_cert.endswith("-----END CERTIFICATE-----\n")
    assert config.client_verify is True


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (f'server_cert: "{_CERT}"', "server_key is required"),
        (f'server_key: "{_KEY}"', "server_cert is required"),
        (f'server_key: "/etc/ssl/key.pem" server_cert: "{_CERT}"', "server_key is not PEM text"),
        (
            f'server_key: "{_KEY}" server_cert: "{_CERT}" client_verify: true',
            "client_verify is true but custom_ca is empty",
        ),
        ("server_key: 3", "Invalid protobuf file: 'ssl.config': Error parsing text-format"),
        ("server_keys: 'x'", "Invalid protobuf file: 'ssl.config'.*server_keys"),
    ],
)
def test_invalid_configs_are_one_line_errors(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as err:
        parse_ssl_config(text, source="ssl.config")
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file or directory"):
        read_ssl_config(tmp_path / "absent.config")
