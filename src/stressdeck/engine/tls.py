"""TLS for both clients: one SSL context from the plan's options, and why a handshake failed.

The context is built the same way for aiohttp and the fast client, so a CA bundle, a client
certificate (mutual TLS) or a server name to verify behave alike whichever client sends.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# The error class of a TLS failure, with its reason when the certificate check names one.
TLS = "tls"
EXPIRED = "tls: expired"
NOT_YET_VALID = "tls: not yet valid"
UNKNOWN_ISSUER = "tls: unknown issuer"
WRONG_HOST = "tls: wrong host"
CLIENT_CERT_REFUSED = "tls: client certificate refused"

# OpenSSL's X509_V_ERR_* codes, as ssl.SSLCertVerificationError.verify_code carries them.
_VERIFY_REASONS = {
    2: UNKNOWN_ISSUER,  # unable to get issuer certificate
    9: NOT_YET_VALID,
    10: EXPIRED,
    18: UNKNOWN_ISSUER,  # self-signed certificate
    19: UNKNOWN_ISSUER,  # self-signed certificate in the chain
    20: UNKNOWN_ISSUER,  # unable to get local issuer certificate
    21: UNKNOWN_ISSUER,  # unable to verify the first certificate
    62: WRONG_HOST,  # hostname mismatch
    64: WRONG_HOST,  # IP address mismatch
}
# The server's alert when it wanted a client certificate and got none or one it distrusts.
_CLIENT_CERT_ALERTS = (
    "CERTIFICATE_REQUIRED",
    "BAD_CERTIFICATE",
    "UNKNOWN_CA",
    "CERTIFICATE_UNKNOWN",
)


@dataclass(frozen=True)
class TlsOptions:
    """Resolved TLS settings (paths absolute, the key's passphrase expanded from ``${ENV}``)."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    # Never in a repr: the passphrase must not reach a log or a traceback.
    key_password: str | None = field(default=None, repr=False)
    server_name: str | None = None


def ssl_context(options: TlsOptions | None, insecure: bool) -> ssl.SSLContext:
    """The client context: the system's CAs (or ``ca_file``), a client certificate if named.

    Raises ``ssl.SSLError`` or ``OSError`` for a file that does not load; the plan checks this
    once at build time, so a run never starts with a broken certificate.
    """
    options = options or TlsOptions()
    context = ssl.create_default_context(cafile=options.ca_file)
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if options.cert_file:
        # A callable, never None: with None, OpenSSL asks for a passphrase on the terminal.
        password = options.key_password or ""
        context.load_cert_chain(
            options.cert_file, options.key_file or None, password=lambda: password
        )
    # HTTP/1.1 only: both clients speak it, and a server must not pick h2 for us.
    context.set_alpn_protocols(["http/1.1"])
    return context


class TlsFileError(ValueError):
    """A TLS file or passphrase that does not load, blamed on the setting at fault:
    ``ca_file``, ``cert_file``, ``key_file`` or ``key_password``."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting
        self.message = message


def check_tls_files(options: TlsOptions) -> None:
    """Load each TLS file in turn and raise TlsFileError naming the one at fault.

    OpenSSL says ``[SSL] PEM lib`` alike for a wrong passphrase, a key that is not there and
    a certificate that is not one, so each part is tried on its own: the CA bundle, the
    certificate, the key (in its own file, or in the certificate's), then the two together.
    """
    if options.ca_file:
        try:
            ssl.create_default_context(cafile=options.ca_file)
        except (ssl.SSLError, OSError, ValueError) as exc:
            why = f"cannot load it: no CA certificate in it ({_why(exc)})"
            raise TlsFileError("ca_file", why) from None
    if not options.cert_file:
        return
    try:
        ssl.create_default_context().load_verify_locations(cafile=options.cert_file)
    except (ssl.SSLError, OSError, ValueError) as exc:
        why = f"cannot load it: no PEM certificate in it ({_why(exc)})"
        raise TlsFileError("cert_file", why) from None
    key_path = options.key_file or options.cert_file
    try:
        key_text = Path(key_path).read_bytes()
    except OSError as exc:
        raise TlsFileError("key_file", f"cannot read it ({_why(exc)})") from None
    if b"PRIVATE KEY-----" not in key_text:
        if options.key_file is None:
            raise TlsFileError(
                "key_file",
                f"missing: the certificate file {options.cert_file} holds no private key",
            )
        raise TlsFileError("key_file", "cannot load it: no PEM private key in it")
    # PKCS#8 "ENCRYPTED PRIVATE KEY", or the older "Proc-Type: 4,ENCRYPTED" header.
    encrypted = b"ENCRYPTED" in key_text
    try:
        ssl_context(options, insecure=False)
    except (ssl.SSLError, OSError, ValueError) as exc:
        if getattr(exc, "reason", None) == "KEY_VALUES_MISMATCH":
            raise TlsFileError(
                "key_file", "is not the key of the certificate (cert_file)"
            ) from None
        if encrypted and not options.key_password:
            raise TlsFileError(
                "key_password", "missing: the key is encrypted with a passphrase"
            ) from None
        if encrypted:
            raise TlsFileError(
                "key_password", "wrong passphrase: it does not open the key"
            ) from None
        setting = "key_file" if options.key_file else "cert_file"
        raise TlsFileError(setting, f"cannot load it ({_why(exc)})") from None


def client_certificate_hint(target: str, status_counts: Mapping[int, int]) -> str | None:
    """A hint beside 400 answers over HTTPS: a server that wants a client certificate and got
    none it trusts often answers 400 rather than failing the handshake (nginx with
    ``ssl_verify_client on``: "400 No required SSL certificate was sent")."""
    if not target.lower().startswith("https://") or not status_counts.get(400):
        return None
    return (
        "hint: 400 over HTTPS is what a server that wants a client certificate answers "
        "without one it trusts (nginx: No required SSL certificate was sent): "
        "give it with --tls-cert and --tls-key ([tls] cert_file, key_file)"
    )


def _why(exc: BaseException) -> str:
    return str(getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc)


def tls_class(exc: BaseException) -> str:
    """The error class of a TLS failure: ``tls``, or ``tls: <reason>`` when one is known."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _VERIFY_REASONS.get(exc.verify_code, TLS)
    reason = getattr(exc, "reason", None) or ""
    if isinstance(exc, ssl.SSLError) and any(alert in reason for alert in _CLIENT_CERT_ALERTS):
        return CLIENT_CERT_REFUSED
    return TLS
