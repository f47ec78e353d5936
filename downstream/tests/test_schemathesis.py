"""Property-based run of the whole API against its own OpenAPI schema, with a valid token.

Every response must be documented (status, content type, headers, body schema)
and none may be a server error, whatever schemathesis generates, valid or not.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings

pytestmark = pytest.mark.django_db


@pytest.fixture
def _keep_test_connection():
    """As Django's test client does: the WSGI app must not close the test's database connection after each call."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def token(make_api_client, artist, make_track, set_consent):
    """A client allowed everything, and a little data to find: granted tracks and a manifest."""
    from consent.models import Purpose

    slugs = list(Purpose.objects.values_list("slug", flat=True))
    for track in (make_track(owner=artist, isrc="GBAYE2400099"), make_track(owner=artist)):
        set_consent(track, **dict.fromkeys(slugs, True))
    _, token = make_api_client(purposes=slugs, manifests=True, usage=True, rate_limit=1_000_000)
    return token


def test_every_response_conforms_to_the_schema_and_none_is_a_server_error(token, _keep_test_connection):
    # Driven with hypothesis directly (schemathesis's pytest plugin does not run under pytest 9).
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
    headers = {"Authorization": f"Bearer {token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=40,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def conforms(case):
            case.call_and_validate(headers=headers)

        conforms()
