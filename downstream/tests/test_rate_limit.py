"""The per-client rate limit, claimed from the cache in leases: never more than the limit, whatever the processes."""

from __future__ import annotations

import itertools

import pytest
from django.conf import settings

from conftest import service_missing
from downstream.api import QuotaLeases

WINDOW = 60
NOW = 1_000_000 * WINDOW + 10.0  # inside one window, 50 s before its end
_clients = itertools.count(900_001)


@pytest.fixture(autouse=True)
def _redis_cache():
    if "redis" not in settings.CACHES["default"]["BACKEND"].lower():
        service_missing("REDIS_URL is not set: the cache is not Redis")


def _let_through(leases: QuotaLeases, client: int, limit: int, times: int) -> int:
    return sum(leases.take(client, limit, WINDOW, NOW) is None for _ in range(times))


@pytest.mark.parametrize("limit", [2, 199, 1000, 1005, 100_000])
def test_processes_taking_turns_let_through_exactly_the_limit(limit):
    client = next(_clients)
    workers = [QuotaLeases() for _ in range(3)]
    allowed = 0
    for worker in itertools.islice(itertools.cycle(workers), limit + 200):
        allowed += worker.take(client, limit, WINDOW, NOW) is None
    assert allowed == limit


def test_a_refusal_says_when_the_window_ends():
    client = next(_clients)
    worker = QuotaLeases()
    assert _let_through(worker, client, 3, 3) == 3
    assert worker.take(client, 3, WINDOW, NOW) == 50


def test_an_unspent_lease_elsewhere_refuses_early_but_never_lets_more_through():
    client = next(_clients)
    first, second = QuotaLeases(), QuotaLeases()
    assert first.take(client, 1000, WINDOW, NOW) is None  # claims 10, spends 1

    assert _let_through(second, client, 1000, 2000) == 990
    assert _let_through(first, client, 1000, 2000) == 9  # its lease, then nothing


def test_a_new_window_starts_afresh():
    client = next(_clients)
    worker = QuotaLeases()
    assert _let_through(worker, client, 5, 10) == 5
    assert _let_through_at(worker, client, 5, NOW + WINDOW) == 5


def _let_through_at(leases: QuotaLeases, client: int, limit: int, now: float) -> int:
    return sum(leases.take(client, limit, WINDOW, now) is None for _ in range(limit * 2))
