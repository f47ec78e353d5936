"""One outage of one service, as a process sees it: logged once, not asked again for a moment.

Used by the fail-open cache (creatorportal/cache.py) and by the enqueueing of
Celery tasks (creatorportal/queueing.py): while Redis is down, a page pays
for finding that out once, and the log says so once, not once per call.
"""

from __future__ import annotations

import logging
import threading
import time
from urllib.parse import urlsplit

logger = logging.getLogger("platformkit.outage")


class Outage:
    """Whether one service is down, shared by every thread of the process."""

    def __init__(self, name: str, *, consequence: str, retry_after: float):
        self.name = name
        self.consequence = consequence
        self.retry_after = retry_after
        self._lock = threading.Lock()
        self.down_since: float | None = None
        self.retry_at = 0.0
        self.skipped = 0

    def skip(self) -> bool:
        """True while the service failed a moment ago: answer without asking it."""
        if self.down_since is None or time.monotonic() >= self.retry_at:
            return False
        self.skipped += 1
        return True

    def failed(self, error: BaseException) -> None:
        with self._lock:
            self.retry_at = time.monotonic() + self.retry_after
            if self.down_since is not None:
                return  # the same outage: already logged
            self.down_since = time.monotonic()
            self.skipped = 0
        logger.warning("%s is unreachable (%s: %s): %s", self.name, type(error).__name__, error, self.consequence)

    def recovered(self) -> None:
        if self.down_since is None:  # the usual case, without taking the lock
            return
        with self._lock:
            if self.down_since is None:
                return
            seconds, skipped = time.monotonic() - self.down_since, self.skipped
            self.down_since = None
        logger.warning("%s answers again after %.0f s (%d calls answered without it)", self.name, seconds, skipped)


_outages: dict[str, Outage] = {}
_outages_lock = threading.Lock()


def outage_for(role: str, url: str, *, consequence: str, retry_after: float) -> Outage:
    """The one Outage of `role` ("cache", "broker") at `url` in this process.

    A password in the URL is never logged.
    """
    parts = urlsplit(url)
    where = f"{parts.scheme}://{parts.hostname}:{parts.port or ''}{parts.path}" if parts.hostname else parts.scheme
    name = f"{role} {where}"
    with _outages_lock:
        if name not in _outages:
            _outages[name] = Outage(name, consequence=consequence, retry_after=retry_after)
        return _outages[name]


def forget_outages() -> None:
    """For tests that start and stop their own servers."""
    with _outages_lock:
        _outages.clear()
