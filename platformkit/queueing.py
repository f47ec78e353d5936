"""Handing tasks to the broker from a request, without ever failing the request.

Every task enqueued here has a sweep that finds its work again if the broker
never got it (the outbox sweep, the stalled-tracks sweep, the restart of an
unfinished policy fan-out), so an enqueue that fails is logged and left to
the sweep. After a failure the broker is not asked again for a few seconds:
while Redis is down a save pays for finding that out once, not once per task,
and the log says so once.
"""

from __future__ import annotations

import logging

from platformkit.outage import outage_for

logger = logging.getLogger(__name__)

RETRY_AFTER = 5.0


def task_named(name: str):
    """The registered Celery task called `name`.

    An app's services enqueue its tasks by name: the tasks module calls the
    services, so importing it back would make an import cycle inside the app.
    """
    from celery import current_app

    if name not in current_app.tasks:
        # A worker imports every app's tasks module when it starts; a web process does it here, once.
        current_app.loader.import_default_modules()
    return current_app.tasks[name]


def enqueue(task, *args, always_try: bool = False) -> bool:
    """`task.delay(*args)`, or False when the broker did not take it.

    `always_try` asks the broker even if it failed a moment ago: for the sweeps,
    which run off the request path and are how work gets out once it is back.
    """
    if task.app.conf.task_always_eager:
        # Tests run tasks in-process: a failure here is the task's, not the broker's.
        try:
            task.delay(*args)
        except Exception:
            logger.warning("task %s failed in-process", task.name, exc_info=True)
            return False
        return True
    outage = outage_for(
        "broker",
        task.app.conf.broker_url,
        consequence="tasks are not enqueued; the sweeps hand their work out once it answers again",
        retry_after=RETRY_AFTER,
    )
    if not always_try and outage.skip():
        return False
    try:
        task.delay(*args)
    except Exception as error:  # kombu raises its own errors and the transport's
        outage.failed(error)
        return False
    outage.recovered()
    return True
