from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

WORKER_HEARTBEAT_KEY = "celery:worker-heartbeat"


@shared_task(ignore_result=True)
def worker_heartbeat() -> str:
    """Prove a worker is consuming: beat schedules it, /healthz reports it."""
    now = timezone.now().isoformat()
    cache.set(WORKER_HEARTBEAT_KEY, now, timeout=None)
    return now
