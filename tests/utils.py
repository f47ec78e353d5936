import base64
import hashlib
import hmac
import struct
import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], object], *, timeout: float = 30.0, interval: float = 0.1, message: str = ""):
    """Poll until predicate() is truthy and return its value; fail loudly on timeout.

    Tests that involve a real worker or browser wait for an outcome instead of
    sleeping a fixed time.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for: {message or predicate!r}")
        time.sleep(interval)


def totp(secret: str, at: float) -> str:
    """RFC 6238 code, computed independently of allauth to check its verifier."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(at // 30)), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"
