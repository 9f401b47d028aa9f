"""DKIM for outgoing mail: key store, signer, DNS records and checks (issue 5, first half).

- `keys`: PEM keys (0600) and a manifest per signing domain under `dkim.key_dir`.
- `sign`: DKIM-Signature headers (dkimpy canonicalisation, OpenSSL signatures), over-signing.
- `service`: `sign_outgoing()` for the post-acceptance transform stage, `check_startup()`.
- `dnscheck`: is each key's TXT record published (dnspython)? Promotes pending keys.
- `records`: recommended SPF and DMARC records for `mailgw dns records`.
"""

from mailgw.dkim.errors import DkimError, DkimRefused
from mailgw.dkim.service import check_startup, ensure_first_keys, prepare, sign_outgoing

__all__ = ["DkimError", "DkimRefused", "check_startup", "ensure_first_keys", "prepare",
           "sign_outgoing"]
