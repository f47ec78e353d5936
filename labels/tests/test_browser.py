"""The catalogue in a real Chromium: filter, select all matching, preview, apply."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from consent.models import Consent
from labels.tests.conftest import preview

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_manager_filters_selects_all_matching_previews_applies_and_artist_gets_one_email(
    browser_page, live_server, client, make_direct_roster, smtp_server, sign_in_browser, page_errors
):
    # Delegations made directly: this test counts only the bulk change's email.
    # Ada has more than one page of 50 tracks.
    label, manager, (ada, bo) = make_direct_roster("Northern Records", {"Ada Artist": 60, "Bo Other": 3})

    page = browser_page
    errors = page_errors
    sign_in_browser(page, manager)

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
    browser_page, live_server, client, make_direct_roster, sign_in_browser, page_errors
):
    from django.utils import timezone

    from labels.models import BulkChange

    label, manager, _ = make_direct_roster("Progress Records", {"Ada Artist": 40})
    bulk = preview(manager, label, {"recommendation": True})
    # Stands in for a worker part-way through.
    BulkChange.objects.filter(pk=bulk.pk).update(status=BulkChange.Status.RUNNING, progress_done=10)

    page = browser_page
    errors = page_errors
    sign_in_browser(page, manager)
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
