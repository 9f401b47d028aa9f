"""Recommended SPF and DMARC records for a domain, explained in Vietnamese and English.

Used by `mailgw dns records`. Most provincial domains publish neither; these are safe starting
points for a domain whose mail leaves only through this gateway.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class Record:
    """One DNS record to publish, with what it does."""

    kind: str
    name: str
    text: str
    vi: str
    en: str


def spf(domain: str, ips: list[str]) -> Record:
    """SPF: the gateway's addresses (or the domain's MX hosts) may send; everything else fails."""
    mechanisms = []
    for ip in ips:
        net = ipaddress.ip_network(ip, strict=False)
        addr = net.with_prefixlen if net.num_addresses > 1 else str(net.network_address)
        mechanisms.append(f"ip{net.version}:{addr}")
    text = "v=spf1 " + " ".join(mechanisms or ["mx"]) + " -all"
    who = "các địa chỉ IP đã liệt kê" if ips else "các máy chủ MX của tên miền"
    who_en = "the listed IP addresses" if ips else "the domain's MX hosts"
    return Record(
        "SPF", f"{domain}.", text,
        f"SPF: chỉ {who} (cổng thư này) được gửi thư với địa chỉ người gửi @{domain}; "
        "máy chủ nhận từ chối hoặc đánh dấu thư gửi từ nơi khác (-all).",
        f"SPF: only {who_en} (this gateway) may send mail with an @{domain} envelope sender; "
        "receivers reject or mark mail sent from anywhere else (-all).")


def dmarc(domain: str, policy: str, report_to: str) -> Record:
    """DMARC: what receivers do with mail whose From is this domain but fails SPF and DKIM."""
    text = f"v=DMARC1; p={policy}; pct=100; adkim=r; aspf=r; rua=mailto:{report_to}"
    action_vi = {"none": "chỉ báo cáo, chưa chặn", "quarantine": "đưa vào thư rác (cách ly)",
                 "reject": "từ chối"}[policy]
    action_en = {"none": "only report it, block nothing yet",
                 "quarantine": "put it in spam (quarantine)", "reject": "reject it"}[policy]
    return Record(
        "DMARC", f"_dmarc.{domain}.", text,
        f"DMARC: thư mang tên miền {domain} ở dòng From mà không qua được SPF hoặc DKIM (khớp tên "
        f"miền) thì máy chủ nhận sẽ {action_vi} (p={policy}); báo cáo tổng hợp gửi về "
        f"{report_to}. Nên bắt đầu bằng p=none, xem báo cáo vài tuần, rồi chuyển sang "
        "quarantine và reject.",
        f"DMARC: mail with {domain} in From that passes neither SPF nor DKIM (aligned with the "
        f"domain) is handled by receivers as: {action_en} (p={policy}); aggregate reports go to "
        f"{report_to}. Start with p=none, read the reports for a few weeks, then move to "
        "quarantine and reject.")


def recommended(domain: str, ips: list[str], policy: str = "quarantine",
                report_to: str = "") -> list[Record]:
    """The SPF and DMARC records for `domain`."""
    return [spf(domain, ips), dmarc(domain, policy, report_to or f"dmarc-reports@{domain}")]
