"""The fail-open cache against a real redis-server of the test's own."""

import logging

import pytest
from django.core.cache import caches
from redis.exceptions import RedisError

from tests.utils import wait_until


@pytest.fixture
def cache(redis_cache, settings):
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "OPTIONS": {**settings.CACHES["default"].get("OPTIONS", {}), "fail_open_retry_after": 0.2},
        }
    }
    return caches["default"]


def test_a_cache_that_went_away_answers_as_an_empty_one_and_comes_back(cache, redis_cache, caplog):
    caplog.set_level(logging.WARNING, logger="platformkit.outage")
    cache.set("kept", "value")
    assert cache.get("kept") == "value"

    redis_cache.stop()

    assert cache.get("kept", "fallback") == "fallback"
    assert cache.get_many(["kept"]) == {}
    assert cache.add("lock", 1) is True  # a lock or one-use guard goes ahead: the fail-open choice
    assert cache.get_or_set("computed", lambda: "from the database") == "from the database"
    cache.set("lost", 1)
    cache.delete("kept")
    with pytest.raises(ValueError):
        cache.incr("counter")
    with pytest.raises(RedisError):  # the strict probe, for /healthz
        cache.probe()

    redis_cache.start()
    wait_until(lambda: cache.add("back", 1) and cache.get("back") == 1, message="the cache to be used again")

    messages = [r.getMessage() for r in caplog.records if r.name == "platformkit.outage"]
    assert len([m for m in messages if "unreachable" in m]) == 1
    assert len([m for m in messages if "answers again after" in m]) == 1
