"""DKIM signatures on outgoing email (RFC 6376), with dkimpy.

Mailbox providers (Gmail, Yahoo, Outlook) require bulk senders to sign, and count RFC 8058 one-click
unsubscribe only when the signature covers `List-Unsubscribe` and `List-Unsubscribe-Post`. The signer
is built once per worker from CLM_DKIM_SELECTOR, CLM_DKIM_DOMAIN and CLM_DKIM_PRIVATE_KEY (an RSA key
in PEM; CLM_DKIM_PRIVATE_KEY_FILE reads it from a file). The public key is published by the shop in
DNS as `<selector>._domainkey.<domain>` TXT `v=DKIM1; k=rsa; p=<base64 of the public key>`.
"""

from __future__ import annotations

import dkim

# Signed when present. From is required by RFC 6376; the List-Unsubscribe pair must be covered for
# one-click unsubscribe to count; the MIME headers keep a relay from re-encoding the body unnoticed.
SIGNED_HEADERS = (b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"mime-version",
                  b"content-type", b"content-transfer-encoding", b"list-unsubscribe", b"list-unsubscribe-post")


class DkimSigner:
    """Adds a `DKIM-Signature` header to a serialized message (bytes with CRLF line endings)."""

    def __init__(self, selector: str, domain: str, private_key: str):
        self.selector = selector.strip().encode("ascii")
        self.domain = domain.strip().lower().encode("idna")
        key = private_key.strip()
        if "-----BEGIN" not in key or "PRIVATE KEY-----" not in key:
            raise ValueError("CLM_DKIM_PRIVATE_KEY must be an RSA private key in PEM form "
                             "(-----BEGIN RSA PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----)")
        self.key = key.encode("ascii") + b"\n"
        try:  # a key that cannot sign is found when the worker starts, not on the first message
            self.sign(b"From: a@example.vn\r\nSubject: check\r\n\r\nkey check\r\n")
        except (dkim.DKIMException, ValueError, IndexError, TypeError) as exc:
            raise ValueError(f"CLM_DKIM_PRIVATE_KEY cannot be read as an RSA private key: {exc}") from exc

    def sign(self, message: bytes) -> bytes:
        """`message` with its DKIM-Signature header first (relaxed/relaxed canonicalization, rsa-sha256)."""
        present = {line.split(b":", 1)[0].strip().lower() for line in message.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
                   if line and line[:1] not in (b" ", b"\t")}
        headers = [h for h in SIGNED_HEADERS if h in present]
        signature = dkim.sign(message, self.selector, self.domain, self.key, canonicalize=(b"relaxed", b"relaxed"),
                              include_headers=headers)
        return signature + message


def signer_from_settings(settings) -> DkimSigner | None:
    """The signer when DKIM is configured; None when none of its settings is set."""
    key = settings.dkim_private_key.get_secret_value() if settings.dkim_private_key is not None else ""
    given = {"CLM_DKIM_SELECTOR": settings.dkim_selector, "CLM_DKIM_DOMAIN": settings.dkim_domain,
             "CLM_DKIM_PRIVATE_KEY": key}
    if not any(given.values()):
        return None
    missing = [name for name, value in given.items() if not value]
    if missing:
        raise ValueError(f"DKIM signing needs {', '.join(missing)} as well "
                         "(CLM_DKIM_SELECTOR, CLM_DKIM_DOMAIN and CLM_DKIM_PRIVATE_KEY go together)")
    return DkimSigner(settings.dkim_selector, settings.dkim_domain, key)
