"""TLS for ``interp serve --tls-cert FILE --tls-key FILE``: the server's
context. The event loop terminates TLS itself (asyncio's SSL transport), so
every rule of a plain connection (head and body deadlines, slow readers, a
client going away, pipelining) applies unchanged; the handshake must end
within the header timeout."""

from __future__ import annotations

import ssl


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """The server's TLS context: TLS 1.2 or later, the certificate chain and
    key (PEM). OSError or ValueError (ssl.SSLError) for a file that is
    missing, unreadable or not a matching certificate and key."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as exc:
        raise ValueError("--tls-cert %s and --tls-key %s are not a matching PEM certificate and key (%s)"
                         % (cert_file, key_file, exc.reason or exc)) from None
    except OSError as exc:
        raise OSError("cannot read the TLS certificate or key: %s" % exc) from None
    return context
