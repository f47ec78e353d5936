"""The catalogue in a real Chromium: filter, select all matching, preview, apply."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from consent.models import Consent
from labels import bulk as bulk_changes
from labels import services
from labels.models import Delegation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCOPES = {"recommendation": "grant_withdraw", "fraud_detection": "withdraw", "generative_training": "none"}


def _wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_manager_filters_selects_all_matching_previews_applies_and_artist_gets_one_email(
    browser_page, live_server, client, make_user, make_tracks, smtp_server
):
    manager = make_user(display_name="Mia Manager")
    label = services.create_label(owner=manager, name="Northern Records")
    ada = make_user(display_name="Ada Artist")
    bo = make_user(display_name="Bo Other")
    make_tracks(60, owner=ada)  # more than one page of 50
    make_tracks(3, owner=bo)
    # Delegations made directly: this test counts only the bulk change's email.
    for artist in (ada, bo):
        Delegation.objects.create(artist=artist, label=label, status=Delegation.Status.ACTIVE, scopes=SCOPES)

    page = browser_page
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    client.force_login(manager)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )

    page.goto(f"/labels/{label.slug}/")
    page.get_by_label("Artist", exact=True).select_option(label="Ada Artist")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**artist=*")
    assert page.get_by_text("60 tracks; page 1 of 2").is_visible()

    page.get_by_label("All 60 tracks matching this filter (across every page)").check()
    # The script marks every row as covered by "all matching".
    assert page.locator("[data-row]").first.is_disabled()
    page.locator("input[name=purpose][value=recommendation]").check()
    page.get_by_label("Grant", exact=True).check()
    page.get_by_role("button", name="Preview").click()

    page.wait_for_url("**/bulk/*/")
    assert page.get_by_text("Will change").is_visible()
    assert page.locator(".labels-counts dd").first.inner_text() == "60"
    assert Consent.objects.filter(granted=True).count() == 0
    page.get_by_role("button", name="Apply 60 changes").click()
    page.wait_for_selector("text=Applied 60 change(s); 1 artist(s) were emailed once each.")

    assert Consent.objects.filter(granted=True, track__owner=ada).count() == 60
    assert Consent.objects.filter(granted=True, track__owner=bo).count() == 0
    assert _wait_for(lambda: len(smtp_server.to(ada.email)) >= 1)
    time.sleep(0.5)  # a second email, if there were one, would have arrived by now
    assert len(smtp_server.to(ada.email)) == 1
    assert "on your behalf" in smtp_server.to(ada.email)[0].get_body(("plain",)).get_content()
    assert smtp_server.to(bo.email) == []
    assert errors == []


def test_progress_bar_follows_a_running_change_and_reloads_when_it_finishes(
    browser_page, live_server, client, make_user, make_tracks
):
    from django.utils import timezone

    from labels.models import BulkChange
    from tracks.models import Track

    manager = make_user(display_name="Mia Manager")
    label = services.create_label(owner=manager, name="Progress Records")
    ada = make_user(display_name="Ada Artist")
    make_tracks(40, owner=ada)
    Delegation.objects.create(artist=ada, label=label, status=Delegation.Status.ACTIVE, scopes=SCOPES)
    bulk = bulk_changes.preview_bulk_edit(
        actor=manager,
        label=label,
        tracks=Track.objects.all(),
        changes={"recommendation": True},
        filter_params={},
        selection=None,
    )
    # Stands in for a worker part-way through.
    BulkChange.objects.filter(pk=bulk.pk).update(status=BulkChange.Status.RUNNING, progress_done=10)

    page = browser_page
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    client.force_login(manager)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page.goto(f"/labels/{label.slug}/bulk/{bulk.pk}/")
    assert page.locator("[data-progress-text]").inner_text() == "10 of 40"

    BulkChange.objects.filter(pk=bulk.pk).update(progress_done=25)
    expect(page.locator("[data-progress-text]")).to_have_text("25 of 40", timeout=10_000)
    assert page.locator("progress").get_attribute("max") == "40"

    BulkChange.objects.filter(pk=bulk.pk).update(
        status=BulkChange.Status.DONE, progress_done=40, applied=40, finished_at=timezone.now()
    )
    page.wait_for_selector("text=Artists emailed")
    assert page.locator("[data-progress]").count() == 0
    assert errors == []
