"""A self-signed certificate for 127.0.0.1 and localhost, made by the test (openssl CLI), and a client context."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Certificate:
    """PEM files of a certificate and its unencrypted private key."""

    certificate: Path
    private_key: Path

    def client_context(self) -> ssl.SSLContext:
        """A client context trusting this certificate only (hostname and expiry checked as usual)."""
        return ssl.create_default_context(cafile=str(self.certificate))

    def tls_settings(self, **extra: object) -> dict[str, object]:
        """The `server.tls` section serving this certificate."""
        return {"certificate": str(self.certificate), "private_key": str(self.private_key), **extra}


def make_certificate(folder: Path, name: str = "server") -> Certificate:
    """`openssl req -x509`: a two-day self-signed certificate with subjectAltName IP:127.0.0.1, DNS:localhost."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl command is missing (Debian: apt-get install openssl)", pytrace=False)
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"]
    names = ["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]
    subprocess.run(
        [openssl, *request, *names, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return Certificate(cert, key)
