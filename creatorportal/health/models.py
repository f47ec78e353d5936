from django.db import models


class WorkerHeartbeat(models.Model):
    """When each Celery worker last ran the heartbeat task.

    Kept in the database, not in Redis, so /healthz can still say how long ago
    a worker was seen while Redis (the broker) is down.
    """

    hostname = models.CharField(max_length=255, unique=True)
    last_seen = models.DateTimeField()

    class Meta:
        ordering = ["-last_seen"]

    def __str__(self) -> str:
        return f"{self.hostname} at {self.last_seen:%Y-%m-%d %H:%M:%S}"
