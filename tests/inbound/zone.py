"""The test zone shared by the inbound tests: senders with SPF, DKIM keys and DMARC records."""

from __future__ import annotations

from tests.inbound.conftest import txt

SPF_NET = "192.0.2.0/24"        # example.com's (and most test domains') sending network
GOOD_IP = "192.0.2.5"
BAD_IP = "198.51.100.7"
PROVINCE_IP = "10.1.2.3"


def records(key_record: str) -> dict[tuple[str, str], list[str]]:
    spf = txt(f"v=spf1 ip4:{SPF_NET} -all")
    return {
        ("example.com", "TXT"): [spf],
        ("example.com", "A"): ["192.0.2.1"],
        ("sel._domainkey.example.com", "TXT"): [key_record],
        ("_dmarc.example.com", "TXT"): [txt("v=DMARC1; p=reject; rua=mailto:d@example.com"),
                                        txt("unrelated text record")],
        ("soft.example", "TXT"): [txt(f"v=spf1 ip4:{SPF_NET} ~all")],
        ("nospf.example", "A"): ["192.0.2.9"],
        ("helo.example", "TXT"): [txt(f"v=spf1 ip4:{SPF_NET} -all")],
        ("include.example", "TXT"): [txt("v=spf1 include:slow.example -all")],
        ("quarantine.example", "TXT"): [spf],
        ("_dmarc.quarantine.example", "TXT"): [txt("v=DMARC1; p=quarantine")],
        ("monitor.example", "TXT"): [spf],
        ("_dmarc.monitor.example", "TXT"): [txt("v=DMARC1; p=none")],
        ("pct.example", "TXT"): [spf],
        ("_dmarc.pct.example", "TXT"): [txt("v=DMARC1; p=reject; pct=30")],
        ("org.example", "TXT"): [spf],
        ("_dmarc.org.example", "TXT"): [txt("v=DMARC1; p=reject; sp=quarantine")],
        ("sub.org.example", "TXT"): [spf],
        ("strict.example", "TXT"): [spf],
        ("_dmarc.strict.example", "TXT"): [txt("v=DMARC1; p=reject; aspf=s; adkim=s")],
        ("bounce.strict.example", "TXT"): [spf],
        ("bounce.example.com", "TXT"): [spf],
        ("dmarcbroken.example", "TXT"): [spf],
        ("_dmarc.keyfail.example", "TXT"): [txt("v=DMARC1; p=reject")],
        ("twodmarc.example", "TXT"): [spf],
        ("_dmarc.twodmarc.example", "TXT"): [txt("v=DMARC1; p=reject"),
                                             txt("v=DMARC1; p=none")],
        # The province: SPF for its own network, a DKIM key, no DMARC record (as most have).
        ("phutho.gov.vn", "TXT"): [txt("v=spf1 ip4:10.1.0.0/16 -all")],
        ("sel._domainkey.phutho.gov.vn", "TXT"): [key_record],
        ("phuth0.gov.vn", "TXT"): [txt("v=spf1 +all")],
        ("_dmarc.phuth0-gov.vn", "TXT"): [txt("v=DMARC1; p=reject")],
    }


SERVFAIL = {"broken.example", "_dmarc.dmarcbroken.example", "sel._domainkey.broken.example",
            "sel._domainkey.keyfail.example"}
SILENT = {"slow.example", "sel._domainkey.slow.example"}
