"""TLS channel credentials against the embedded server started with ``--ssl_config_file``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tfsuite.clients.errors import ServerUnreachableError
from tfsuite.clients.grpc_client import TFServingClient, TLSConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make a test certificate")
    d = tmp_path_factory.mktemp("clients_tls")
    key, cert = d / "key.pem", d / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


def test_tls_client_talks_to_a_tls_server(
    trivial_base: Path, certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    from tfsuite.server.app import ModelServer
    from tfsuite.server.options import ServerOptions

    key, cert = certificate
    ssl_config = tmp_path / "ssl.config"
    ssl_config.write_text(f"server_key: {key.read_text()!r}\nserver_cert: {cert.read_text()!r}\n")
    options = ServerOptions(
        port=-1,
        rest_api_port=0,
        model_name="trivial",
        model_base_path=str(trivial_base),
        ssl_config_file=str(ssl_config),
    )
    with ModelServer(options) as server:
        address = f"127.0.0.1:{server.grpc_port}"
        tls = TLSConfig(root_certificates=cert, server_name_override="localhost")
        with TFServingClient(address, model="trivial", tls=tls) as client:
            out = client.predict({"x": np.array([1.0, 4.0], np.float32)})
            np.testing.assert_allclose(out["y"], [2.5, 4.0])
        # A plaintext client cannot talk to a TLS port: one line, naming the address.
        plain = TFServingClient(address, model="trivial", timeout=5)
        with plain, pytest.raises(ServerUnreachableError) as err:
            plain.predict({"x": np.array([1.0], np.float32)})
        assert address in str(err.value)
