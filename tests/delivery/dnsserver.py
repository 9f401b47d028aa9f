"""A tiny authoritative DNS server on 127.0.0.1 (UDP, dnspython) for mx routing tests.

`records` maps (name, type) to record texts; names not mentioned at all get NXDOMAIN, names in
`servfail` get SERVFAIL, names in `silent` get no answer (a timeout).
"""

from __future__ import annotations

import asyncio
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


class ZoneServer(asyncio.DatagramProtocol):
    def __init__(self, records: dict[tuple[str, str], list[str]],
                 servfail: set[str] | None = None, silent: set[str] | None = None) -> None:
        self.records = {(n.lower().rstrip("."), t): v for (n, t), v in records.items()}
        self.names = {n for n, _ in self.records}
        self.servfail = servfail or set()
        self.silent = silent or set()
        self.queries: list[tuple[str, str]] = []
        self.transport: Any = None
        self.port = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        query = dns.message.from_wire(data)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype))
        if name in self.silent:
            return
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if name in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif name not in self.names:
            response.set_rcode(dns.rcode.NXDOMAIN)
        else:
            texts = self.records.get((name, rdtype), [])
            if texts:
                response.answer.append(
                    dns.rrset.from_text_list(name + ".", 60, "IN", rdtype, texts))
        self.transport.sendto(response.to_wire(), addr)

    async def start(self) -> ZoneServer:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        self.port = self.transport.get_extra_info("sockname")[1]
        return self

    def stop(self) -> None:
        if self.transport is not None:
            self.transport.close()
