"""Where a change came from (address, user agent, request id), as the audit log records it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestMeta:
    """Where a change came from, as the audit log records it."""

    ip: str = ""
    user_agent: str = ""
    request_id: str = ""

    @classmethod
    def from_request(cls, request) -> RequestMeta:
        # REMOTE_ADDR only: a forwarded-for header is whatever the client wrote
        # unless a trusted proxy rewrote it, and the log must not record fiction.
        raw_ip = request.META.get("REMOTE_ADDR", "") or ""
        try:
            ip = str(ipaddress.ip_address(raw_ip))
        except ValueError:
            ip = ""
        # PostgreSQL text cannot hold NUL, and control characters have no
        # business in a log that people read.
        user_agent = "".join(ch for ch in request.headers.get("User-Agent", "") or "" if ch.isprintable())
        return cls(
            ip=ip,
            user_agent=user_agent[:512],
            request_id=(getattr(request, "request_id", "") or "")[:64],
        )
