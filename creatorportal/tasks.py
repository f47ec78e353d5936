import socket
from datetime import timedelta

from celery import Task, shared_task
from django.utils import timezone

from creatorportal.health.models import WorkerHeartbeat

# A worker not seen for this long is gone (renamed, scaled down): forget it.
FORGET_WORKERS_AFTER = timedelta(days=7)


@shared_task(bind=True, ignore_result=True)
def worker_heartbeat(self: Task[[], str]) -> str:
    """Prove a worker is consuming: beat schedules it, /healthz reports its age.

    The row is in the database so /healthz can read it while Redis is down.
    """
    now = timezone.now()
    hostname = self.request.hostname or socket.gethostname()
    WorkerHeartbeat.objects.update_or_create(hostname=hostname, defaults={"last_seen": now})
    WorkerHeartbeat.objects.filter(last_seen__lt=now - FORGET_WORKERS_AFTER).delete()
    return now.isoformat()
