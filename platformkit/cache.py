"""A Redis cache that fails open.

Redis is a cache here, never the source of truth (DESIGN.md rule 9): with it
down, every page must still answer. Each operation that cannot reach Redis
answers as a cache with nothing in it would (a miss, a write that kept
nothing), so the caller falls back to the database. The outage is logged once,
and for a few seconds after a failure Redis is not asked at all, so a dead or
hung server costs one timeout, not one per cache call. `probe()` is the one
strict call, for /healthz.

The trade-offs (allauth's rate limits and its one-use guard on TOTP codes do
not hold while Redis is down) are in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

from functools import wraps

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

from platformkit.outage import outage_for

# Seconds during which a cache that just failed is not asked again.
DEFAULT_RETRY_AFTER = 5.0


def _fail_open(answer):
    """Run the Redis call; if Redis fails (or failed a moment ago), return `answer(*args, **kwargs)`."""

    def decorate(method):
        @wraps(method)
        def wrapper(self, *args, **kwargs):
            if self._outage.skip():
                return answer(*args, **kwargs)
            try:
                result = method(self, *args, **kwargs)
            except RedisError as error:
                self._outage.failed(error)
                return answer(*args, **kwargs)
            self._outage.recovered()
            return result

        return wrapper

    return decorate


def _missing_key(*args, **kwargs):
    raise ValueError("Key not found (the cache is unreachable).")


class FailOpenRedisCache(RedisCache):
    """Django's Redis cache, answering as an empty cache while Redis is unreachable.

    `add` answers True: its callers here use it as a lock or a one-use guard
    (allauth's rate limits, TOTP codes) and then go ahead, which is the
    fail-open choice; False would lock every user out of signing in.
    """

    _servers: list[str]  # set by RedisCache.__init__: the configured server URLs

    def __init__(self, server, params):
        options = dict(params.get("OPTIONS", {}))
        retry_after = float(options.pop("fail_open_retry_after", DEFAULT_RETRY_AFTER))
        super().__init__(server, {**params, "OPTIONS": options})
        self._outage = outage_for(
            "cache",
            self._servers[0],
            consequence="pages are served without it (reads fall back to the database, "
            "rate limits are not enforced) until it answers again",
            retry_after=retry_after,
        )

    @_fail_open(lambda key, default=None, version=None: default)
    def get(self, key, default=None, version=None):
        return super().get(key, default, version)

    @_fail_open(lambda *args, **kwargs: None)
    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return super().set(key, value, timeout, version)

    @_fail_open(lambda *args, **kwargs: True)
    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return super().add(key, value, timeout, version)

    @_fail_open(lambda *args, **kwargs: False)
    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return super().touch(key, timeout, version)

    @_fail_open(lambda *args, **kwargs: False)
    def delete(self, key, version=None):
        return super().delete(key, version)

    @_fail_open(lambda *args, **kwargs: {})
    def get_many(self, keys, version=None):
        return super().get_many(keys, version)

    @_fail_open(lambda *args, **kwargs: False)
    def has_key(self, key, version=None):
        return super().has_key(key, version)

    @_fail_open(_missing_key)
    def incr(self, key, delta=1, version=None):
        return super().incr(key, delta, version)

    @_fail_open(lambda *args, **kwargs: [])
    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return super().set_many(data, timeout, version)

    @_fail_open(lambda *args, **kwargs: None)
    def delete_many(self, keys, version=None):
        return super().delete_many(keys, version)

    @_fail_open(lambda *args, **kwargs: False)
    def clear(self):
        return super().clear()

    def probe(self) -> None:
        """A write and a read that raise if Redis does not answer: for /healthz only."""
        key = self.make_and_validate_key("healthz:probe")
        client = self._cache.get_client(key, write=True)
        client.set(key, b"ok", ex=5)
        if client.get(key) != b"ok":
            raise RuntimeError("cache did not return the value just written")
