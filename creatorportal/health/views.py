"""/healthz: can this node reach what it needs to keep its promises?

Every check reports whether it answered now and the age of its last success,
so a monitor sees how long something has been down. Only the database decides
the status code: with Redis (cache, broker) or the workers down every page
still answers (DESIGN.md rule 9), so a load balancer must keep the node.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from creatorportal.celery import app as celery_app
from creatorportal.health.models import WorkerHeartbeat

# Checks whose failure makes this node unable to serve pages: 503 for a load balancer.
REQUIRED = frozenset({"database"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_cache() -> None:
    probe = getattr(cache, "probe", None)
    if probe is not None:
        # The cache fails open for pages; health must see through that.
        probe()
        return
    cache.set("healthz", "ok", timeout=5)
    if cache.get("healthz") != "ok":
        raise RuntimeError("cache did not return the value just written")


def _check_broker() -> None:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


CHECKS: dict[str, Callable[[], None]] = {"database": _check_database, "cache": _check_cache, "broker": _check_broker}

# Wall-clock time of each check's last success in this process (each gunicorn
# worker keeps its own: a check answered by this node, not by the site).
_last_success: dict[str, float] = {}
_last_success_lock = threading.Lock()


def _seconds_since(moment: float | None, now: float) -> float | None:
    return None if moment is None else round(max(now - moment, 0.0), 1)


def _run_check(name: str, check: Callable[[], None]) -> dict[str, object]:
    try:
        check()
    except Exception as exc:  # any failure is a reportable state, not a 500
        now = time.time()
        with _last_success_lock:
            last = _last_success.get(name)
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300], "age_seconds": _seconds_since(last, now)}
    now = time.time()
    with _last_success_lock:
        _last_success[name] = now
    return {"ok": True, "age_seconds": 0.0}


def _worker_state() -> dict[str, object]:
    """The freshest heartbeat of any worker, and each worker's age, from the database."""
    max_age = settings.HEALTHZ_WORKER_MAX_AGE_SECONDS
    try:
        now = timezone.now()
        workers = {
            beat.hostname: round((now - beat.last_seen).total_seconds(), 1)
            for beat in WorkerHeartbeat.objects.filter(last_seen__gte=now - timedelta(days=1))
        }
    except Exception as exc:  # the database is down: reported by its own check too
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300], "age_seconds": None}
    if not workers:
        return {"ok": False, "error": "no worker heartbeat in the last day", "age_seconds": None, "workers": {}}
    age = max(min(workers.values()), 0.0)
    state: dict[str, object] = {"ok": age <= max_age, "age_seconds": age, "workers": workers}
    if age > max_age:
        state["error"] = f"the last worker heartbeat is {age:.0f} s old (limit {max_age} s)"
    return state


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    results = {name: _run_check(name, check) for name, check in CHECKS.items()}
    results["worker"] = _worker_state()
    if all(result["ok"] for result in results.values()):
        status, code = "ok", 200
    elif all(results[name]["ok"] for name in REQUIRED):
        status, code = "degraded", 200
    else:
        status, code = "unavailable", 503
    return JsonResponse({"status": status, "checks": results}, status=code)
