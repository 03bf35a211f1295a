"""TLS for both clients: one SSL context from the plan's options, and why a handshake failed.

The context is built the same way for aiohttp and the fast client, so a CA bundle, a client
certificate (mutual TLS) or a server name to verify behave alike whichever client sends.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

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


def tls_class(exc: BaseException) -> str:
    """The error class of a TLS failure: ``tls``, or ``tls: <reason>`` when one is known."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _VERIFY_REASONS.get(exc.verify_code, TLS)
    reason = getattr(exc, "reason", None) or ""
    if isinstance(exc, ssl.SSLError) and any(alert in reason for alert in _CLIENT_CERT_ALERTS):
        return CLIENT_CERT_REFUSED
    return TLS
