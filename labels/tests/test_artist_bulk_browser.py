"""The artist's change of one use on many of their own tracks, in a real Chromium: filter, select all
matching, preview, confirm, progress, result and audit rows; the generative-training confirmation with
the keyboard alone; axe on the new pages at 1280 and 390 px."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from consent.models import AuditEvent, Consent
from labels import bulk as bulk_changes
from labels.models import BulkChange
from tests.accessibility import axe_findings, horizontal_overflow
from tracks.models import Track

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def catalogue(artist, make_track):
    night = [make_track(owner=artist, title=f"Night {n}") for n in range(4)]
    day = [make_track(owner=artist, title=f"Day {n}") for n in range(2)]
    return night, day


def granted(artist, slug: str) -> set[str]:
    return set(
        Consent.objects.filter(track__owner=artist, purpose__slug=slug, granted=True).values_list(
            "track__title", flat=True
        )
    )


def check_accessibility(page, findings: list) -> None:
    """axe at 1280 px and at 390 px, light and dark, and nothing wider than a 390 px screen."""
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for width, height in ((1280, 900), (390, 844)):
            page.set_viewport_size({"width": width, "height": height})
            findings += axe_findings(page)
            if width == 390:
                assert horizontal_overflow(page) == 0, page.url
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 1280, "height": 900})


def test_artist_filters_selects_all_matching_previews_confirms_and_sees_the_result_and_audit_rows(
    browser_page, live_server, client, artist, catalogue, sign_in_browser, page_errors
):
    night, day = catalogue
    page = browser_page
    findings: list = []
    sign_in_browser(page, artist)

    page.goto("/consent/")
    page.get_by_text("Filter, search and sort").click()
    page.get_by_label("Title or ISRC").fill("Night")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**q=Night*")
    page.get_by_label("All 4 tracks matching this filter (every page)").check()
    page.get_by_label("Use", exact=True).last.select_option("recommendation")
    page.get_by_label("Allow", exact=True).check()
    page.get_by_role("button", name="Preview the change").click()

    page.wait_for_url("**/consent/bulk/*/")
    assert page.locator("[data-will-change]").inner_text() == "4"
    assert page.get_by_text("Nothing has changed yet.").is_visible()
    assert granted(artist, "recommendation") == set()  # a preview changes nothing
    check_accessibility(page, findings)

    page.get_by_role("button", name="Make 4 changes").click()
    page.wait_for_selector("text=Changed 4 uses on your tracks. Your receipt is in your audit log.")
    assert granted(artist, "recommendation") == {t.title for t in night}
    assert page.locator("[data-applied]").inner_text() == "4"
    check_accessibility(page, findings)

    page.get_by_role("link", name="See each change in your audit log").click()
    page.wait_for_url("**/consent/log/?receipt=*")
    log = page.locator("main").inner_text()
    for track in night:
        assert track.title in log
    assert not any(track.title in log for track in day)
    bulk = BulkChange.objects.get(artist=artist)
    events = AuditEvent.objects.filter(bulk_change_id=bulk.pk)
    assert set(events.values_list("actor_kind", "label_id")) == {("artist", None)}
    assert events.count() == 4
    assert findings == [], "\n".join(map(str, findings))
    assert page_errors == []


def _tab_to(page, predicate_js: str, limit: int = 200) -> None:
    """Press Tab until the focused element satisfies the predicate (keyboard only, no clicks)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(el => {predicate_js})(document.activeElement)"):
            return
    raise AssertionError(f"never reached an element matching {predicate_js}")


def test_keyboard_alone_previews_and_confirms_generative_training_on_the_ticked_tracks(
    browser_page, live_server, client, artist, catalogue, sign_in_browser, page_errors
):
    night, _ = catalogue
    page = browser_page
    sign_in_browser(page, artist)
    page.goto("/consent/?q=Night")

    # Tick two tracks for the change: the scope switches to "only the ticked tracks".
    for track in night[:2]:
        _tab_to(page, f"el.id === 'sel-{track.uuid}'")
        page.keyboard.press("Space")
    assert page.evaluate("document.querySelector('#bulk-scope-ticked').checked")
    _tab_to(page, "el.id === 'bulk-purpose'")
    for _ in range(5):
        if page.evaluate("document.activeElement.value") == "generative_training":
            break
        page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.value") == "generative_training"
    _tab_to(page, "el.name === 'bulk_action'")
    page.keyboard.press("ArrowDown")  # from "Withdraw" to "Allow"
    assert page.evaluate("document.activeElement.value") == "grant"
    _tab_to(page, "el.textContent.trim() === 'Preview the change'")
    page.keyboard.press("Enter")

    page.wait_for_url("**/consent/bulk/*/")
    assert page.locator("[data-will-change]").inner_text() == "2"
    # Without the box ticked, nothing is granted.
    _tab_to(page, "el.tagName === 'BUTTON' && el.textContent.includes('Make 2 changes')")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=needs its own confirmation")
    assert granted(artist, "generative_training") == set()

    _tab_to(page, "el.id === 'bulk-understand'")
    page.keyboard.press("Space")
    assert page.evaluate("document.activeElement.checked")
    _tab_to(page, "el.tagName === 'BUTTON' && el.textContent.includes('Make 2 changes')")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Changed 2 uses on your tracks.")
    assert granted(artist, "generative_training") == {night[0].title, night[1].title}
    assert page_errors == []


def test_progress_of_a_running_change_then_its_result(
    browser_page, live_server, client, artist, catalogue, sign_in_browser, page_errors
):
    from django.utils import timezone

    bulk = bulk_changes.preview_bulk_edit(
        actor=artist,
        artist=artist,
        tracks=Track.objects.filter(owner=artist),
        changes={"fraud_detection": True},
        filter_params={},
        selection=None,
    )
    # Stands in for a worker part-way through.
    BulkChange.objects.filter(pk=bulk.pk).update(status=BulkChange.Status.RUNNING, progress_done=2)
    page = browser_page
    findings: list = []
    sign_in_browser(page, artist)
    page.goto(f"/consent/bulk/{bulk.pk}/")
    assert page.locator("[data-progress-text]").inner_text() == "2 of 6"
    check_accessibility(page, findings)

    BulkChange.objects.filter(pk=bulk.pk).update(progress_done=5)
    expect(page.locator("[data-progress-text]")).to_have_text("5 of 6", timeout=10_000)
    BulkChange.objects.filter(pk=bulk.pk).update(
        status=BulkChange.Status.DONE, progress_done=6, applied=6, finished_at=timezone.now()
    )
    page.wait_for_selector("[data-applied]")
    assert page.locator("[data-progress]").count() == 0
    assert page.get_by_role("button", name="Undo this change").is_visible()
    assert findings == [], "\n".join(map(str, findings))
    assert page_errors == []
