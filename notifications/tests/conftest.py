import pytest
from django.db import transaction

from notifications.models import Notification
from notifications.services import queue_notification


@pytest.fixture
def queue_email(django_capture_on_commit_callbacks):
    """Queue a plain account-style email and commit, as a service would."""
    counter = iter(range(1, 1_000_000))

    def queue(*, to_email="artist@example.test", deliver=True, **context) -> Notification:
        n = next(counter)
        with django_capture_on_commit_callbacks(execute=deliver), transaction.atomic():
            row = queue_notification(
                kind=Notification.Kind.ACCOUNT_EMAIL,
                to_email=to_email,
                dedupe_key=f"test:{n}",
                context={"subject": f"Subject {n}", "body": f"Body {n}", "html": f"<p>Body {n}</p>", **context},
            )
        assert row is not None, "a fresh dedupe key is never a duplicate"
        return row

    return queue
