"""Settings sections about trust: TLS on the server's port and the password checks' limits.
`gateway.settings` re-exports them."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    """As gateway.settings' base: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsSettings(_Strict):
    """HTTPS and WSS on the server's port: a certificate and its private key (PEM files), or neither (plain HTTP)."""

    # PEM files; a relative path is taken from the working directory. The certificate file may hold the chain
    # (the server's certificate first). An encrypted private key is refused (nobody is there to type its password).
    certificate: Path | None = None
    private_key: Path | None = None
    # Strict-Transport-Security on every response (browsers then refuse plain HTTP to this host for a year).
    hsts: bool = False

    @property
    def enabled(self) -> bool:
        """True when the server speaks TLS."""
        return self.certificate is not None

    @model_validator(mode="after")
    def _check(self) -> TlsSettings:
        if (self.certificate is None) != (self.private_key is None):
            raise ValueError("give both certificate and private_key (PEM files), or neither")
        if self.certificate is None or self.private_key is None:
            if self.hsts:
                raise ValueError("hsts needs TLS (certificate and private_key)")
            return self
        for key, path in (("certificate", self.certificate), ("private_key", self.private_key)):
            if not path.is_file():
                raise ValueError(f"{key}: no such file: {path}")
        # Loaded here too, so that check-config and the start say what is wrong before anything listens.
        import ssl

        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                self.certificate, self.private_key, password=_no_password
            )
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(
                f"cannot use certificate {self.certificate} with private_key {self.private_key}: {exc} "
                "(both PEM, the key unencrypted and the certificate's own)"
            ) from None
        return self


def _no_password() -> str:
    # An encrypted private key: fail (OpenSSL would otherwise prompt on the terminal).
    return ""


class SecuritySettings(_Strict):
    """Password checks (a thread pool, off the event loop) and the limits on failed logins."""

    # Threads running scrypt (it releases the GIL): at most this many password checks at once; the rest wait.
    password_workers: int = Field(default=2, gt=0, le=64)
    # How much nicer than the event loop those threads run (Linux; 0: the same priority): the loop's deliveries
    # come first, scrypt takes the CPU left over. The checks are as costly as ever, only scheduled after.
    password_nice: int = Field(default=10, ge=0, le=19)
    # Failed password checks of one user name within login_failure_window_s before it is locked; 0: no limit.
    login_max_failures: int = Field(default=5, ge=0)
    # The same for one client address (every name tried from it); 0: no limit.
    login_max_failures_per_address: int = Field(default=20, ge=0)
    login_failure_window_s: float = Field(default=300.0, gt=0)
    # The first lock's length; each further failure before the key has been quiet for a window doubles it.
    login_backoff_s: float = Field(default=2.0, gt=0)
    login_max_backoff_s: float = Field(default=300.0, gt=0)
    # User names and addresses remembered by each limiter (the least recently failed are forgotten first).
    login_tracked_keys: int = Field(default=10_000, gt=0)
