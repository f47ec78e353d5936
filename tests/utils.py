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
