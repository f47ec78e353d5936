"""The dashboard's numbers against the database, after grants, withdrawals, a label's change and a
policy lapse; each number leads to the list it counts. And generative training granted and withdrawn
with the keyboard alone, through its confirmation."""

from __future__ import annotations

import re

import pytest

from consent.models import AuditEvent, Consent, Purpose
from tests.demo import change, lapse_now, make_tracks, make_user
from tracks.models import Track

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a long and unusual passphrase 7"


def sign_in(page, client, live_server, user):
    client.force_login(user)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )


def expected_counts(artist, purpose: Purpose) -> dict[str, int]:
    """Counted from the rows and the log, independently of the selector the page uses."""
    tracks = Track.objects.filter(owner=artist)
    rows = Consent.objects.filter(track__in=tracks, purpose=purpose)
    lapsed_tracks = set()
    for track_id in rows.filter(granted=False).values_list("track_id", flat=True):
        last = (
            AuditEvent.objects.filter(track_id=track_id, purpose=purpose, kind=AuditEvent.Kind.CONSENT_CHANGED)
            .order_by("-seq")
            .first()
        )
        if last.source == AuditEvent.Source.POLICY_LAPSE:
            lapsed_tracks.add(track_id)
    withdrawn = rows.filter(granted=False).count() - len(lapsed_tracks)
    return {
        "granted": rows.filter(granted=True).count(),
        "by_label": rows.filter(granted=True, changed_by_kind="label").count(),
        "withdrawn": withdrawn,
        "lapsed": len(lapsed_tracks),
        "never": tracks.count() - rows.count(),
        "total": tracks.count(),
    }


def shown_counts(page, purpose: Purpose) -> dict[str, int]:
    card = page.locator(".dash-use").filter(has=page.get_by_role("heading", name=purpose.name, exact=True))
    big = re.match(r"(\d+) of (\d+) tracks? allowed", card.locator(".dash-use__big").inner_text().strip())
    shown = {"granted": int(big.group(1)), "total": int(big.group(2)), "by_label": 0}
    for term, key in [
        ("allowed by your label", "by_label"),
        ("withdrawn", "withdrawn"),
        ("lapsed after a policy change", "lapsed"),
        ("never granted", "never"),
    ]:
        dt = card.locator("dt", has_text=term)
        if dt.count():
            shown[key] = int(dt.locator("xpath=following-sibling::dd[1]").inner_text())
    return shown


def test_dashboard_numbers_match_the_database_and_each_leads_to_its_tracks(
    browser_page, live_server, client, new_policy_version
):
    from labels import services as label_services

    artist = make_user("dash.artist@example.test", "Dana Dash", PASSWORD)
    manager = make_user("dash.manager@example.test", "Lee Label", PASSWORD)
    tracks = make_tracks(artist, [f"Song {n:02d}" for n in range(10)], isrc_prefix="GBDSH26")
    page = browser_page
    sign_in(page, client, live_server, artist)
    purposes = {p.slug: p for p in Purpose.objects.all()}

    def check():
        page.goto("/dashboard/")
        for purpose in purposes.values():
            assert shown_counts(page, purpose) == expected_counts(artist, purpose), purpose.slug

    change(artist, tracks[:6], {"recommendation": True})
    change(artist, tracks[:4], {"generative_training": True}, confirmed_purposes={"generative_training"})
    check()
    change(artist, tracks[4:6], {"recommendation": False})
    check()
    label = label_services.create_label(owner=manager, name="Dash Records")
    label.delegations.create(artist=artist, status="active", scopes={"fraud_detection": "grant_withdraw"})
    change(manager, tracks[3:8], {"fraud_detection": True}, source=AuditEvent.Source.BULK)
    check()
    lapse_now("generative_training", "Generative training now covers voice models.")
    check()
    counts = expected_counts(artist, purposes["generative_training"])
    assert counts["lapsed"] == 4 and counts["granted"] == 0  # the sequence did what it meant to

    # One click from a number to exactly the tracks it counts.
    card = page.locator(".dash-use").filter(has=page.get_by_role("heading", name="Generative AI training", exact=True))
    card.get_by_role("link", name="lapsed after a policy change").click()
    page.wait_for_url("**/consent/?use=generative_training&state=lapsed")
    listed = set(page.locator("tbody th[scope=row] a").all_inner_texts())
    assert listed == {t.title for t in tracks[:4]}
    assert page.locator(".state--lapsed").first.inner_text().startswith("lapsed under policy")

    page.goto("/dashboard/")
    card = page.locator(".dash-use").filter(has=page.get_by_role("heading", name="Fraud detection", exact=True))
    card.get_by_role("link", name="allowed by your label").click()
    listed = set(page.locator("tbody th[scope=row] a").all_inner_texts())
    assert listed == {t.title for t in tracks[3:8]}
    fraud_cells = page.locator(f"td[data-label='{purposes['fraud_detection'].name}'] .state").all_inner_texts()
    assert fraud_cells and all(text.startswith("granted by your label") for text in fraud_cells)

    # The latest changes say who made them.
    page.goto("/dashboard/")
    changes = page.locator(".dash-changes tbody")
    assert changes.locator("tr").first.locator("td[data-label='By']").inner_text() == "policy change"
    assert "your label" in changes.inner_text()


def _tab_to(page, predicate_js: str, limit: int = 200) -> None:
    """Press Tab until the focused element satisfies the predicate (keyboard only, no clicks)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(el => {predicate_js})(document.activeElement)"):
            return
    raise AssertionError(f"never reached an element matching {predicate_js}")


def test_keyboard_alone_grants_and_withdraws_generative_training_through_its_confirmation(
    browser_page, live_server, client
):
    artist = make_user("keys.artist@example.test", "Kim Keys", PASSWORD)
    track = make_tracks(artist, ["Only Keys"], isrc_prefix="GBKEY26")[0]
    page = browser_page
    sign_in(page, client, live_server, artist)
    generative = Consent.objects.filter(track=track, purpose__slug="generative_training")

    page.goto("/consent/")
    _tab_to(page, f"el.value === '{track.uuid}:generative_training'")
    page.keyboard.press("Space")
    assert page.evaluate("document.activeElement.checked")
    _tab_to(page, "el.textContent.trim() === 'Save this page'")
    page.keyboard.press("Enter")

    page.wait_for_url("**/consent/confirm/**")
    assert not generative.filter(granted=True).exists()  # nothing granted before the confirmation
    _tab_to(page, "el.type === 'checkbox'")
    page.keyboard.press("Space")
    _tab_to(page, "el.tagName === 'BUTTON' && el.textContent.includes('Allow')")
    page.keyboard.press("Enter")
    page.wait_for_url("**/consent/")
    assert generative.get().granted

    # Withdrawing is one step: untick, save; no confirmation.
    _tab_to(page, f"el.value === '{track.uuid}:generative_training'")
    assert page.evaluate("document.activeElement.checked")
    page.keyboard.press("Space")
    _tab_to(page, "el.textContent.trim() === 'Save this page'")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert not generative.get().granted
    assert page.locator(f"#s-{track.uuid}-generative_training").inner_text().startswith("withdrawn by you")


def test_leaving_the_matrix_with_unsaved_ticks_asks_first(browser_page, live_server, client):
    artist = make_user("unsaved.artist@example.test", "Uma Unsaved", PASSWORD)
    track = make_tracks(artist, ["Half Done"], isrc_prefix="GBUNS26")[0]
    page = browser_page
    sign_in(page, client, live_server, artist)
    page.goto("/consent/")
    seen = []

    def answer(dialog):
        seen.append(dialog.type)
        dialog.dismiss()  # "stay on this page"

    page.on("dialog", answer)
    page.get_by_label("Allow Recommendation for Half Done").check()
    page.get_by_role("link", name="Dashboard").click()
    page.wait_for_timeout(500)
    assert seen == ["beforeunload"]
    assert page.url.endswith("/consent/")
    assert not Consent.objects.filter(track=track).exists()

    # Untick again: nothing unsaved, so leaving asks nothing.
    page.get_by_label("Allow Recommendation for Half Done").uncheck()
    page.get_by_role("link", name="Dashboard").click()
    page.wait_for_url("**/dashboard/")
    assert seen == ["beforeunload"]
