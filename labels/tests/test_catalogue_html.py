"""The catalogue rows written in Python are the HTML the template loop wrote, in every language and time zone."""

from __future__ import annotations

import datetime
import uuid

import pytest
from django.template import engines
from django.utils import timezone, translation
from django.utils.html import format_html, format_html_join

from accounts.models import User
from consent.models import Purpose
from labels.catalogue_html import artist_options, rows_html
from labels.selectors import CatalogueTrack
from tracks.models import Track

# The loop labels/catalogue.html had over Track instances, with the cells the view built for it: the reference.
TEMPLATE_LOOP = engines["django"].from_string(
    """{% load i18n %}{% translate "Artist" as artist_label %}{% translate "Status" as status_label %}"""
    """{% translate "Uploaded" as uploaded_label %}{% translate "Untitled track" as untitled %}"""
    """{% for track, cells in rows %}
    <tr>
      <td><input type="checkbox" name="track" value="{{ track.uuid }}" id="t-{{ track.uuid }}" data-row></td>
      <th scope="row"><label for="t-{{ track.uuid }}">{{ track.title|default:untitled }}</label></th>
      <td data-label="ISRC">{{ track.isrc }}</td>
      <td data-label="{{ artist_label }}">{{ track.owner.display_name|default:track.owner.email }}</td>
      <td data-label="{{ status_label }}">{{ track.get_status_display }}</td>
      <td data-label="{{ uploaded_label }}"><time datetime="{{ track.created_at|date:'c' }}">"""
    """{{ track.created_at|date:"SHORT_DATE_FORMAT" }}</time></td>
      {{ cells }}
    </tr>
    {% endfor %}"""
)


def _template_rows(rows) -> str:
    opted_in = format_html('<span class="badge badge--ok">{}</span>', translation.gettext("Opted in"))
    no = format_html('<span class="muted">{}</span>', translation.gettext("No"))
    cells = [
        (track, format_html_join("", '<td data-label="{}">{}</td>', ((p.name, opted_in if g else no) for p, g in c)))
        for track, c in rows
    ]
    return TEMPLATE_LOOP.render({"rows": cells})


def _rows():
    named = User(pk=1, email="ada@example.test", display_name='Zoë <O\'Brien> & "Sons"')
    unnamed = User(pk=2, email="bo&co@example.test", display_name="")
    purposes = [
        Purpose(pk=1, slug="recommendation", name="Recommendation"),
        Purpose(pk=2, slug="x", name='Odd "name" <b>'),
    ]
    tracks = [
        # Half past eleven UTC on 30 June is 1 July in Berlin; microseconds show in the machine-readable date.
        (named, 'Amber <b>"Q&A\'s"</b> & co', "GB0000000001", Track.Status.READY, (2026, 6, 30, 23, 30, 0, 500)),
        (unnamed, "", "", Track.Status.FAILED, (2026, 1, 2, 3, 4, 5, 0)),
        (named, "Plain", "GB0000000003", "unknown-status", (2025, 12, 31, 23, 59, 59, 999999)),
    ]
    rows = []
    for i, (owner, title, isrc, status, when) in enumerate(tracks):
        track = Track(
            pk=i + 1,
            uuid=uuid.UUID(int=i + 1),
            owner=owner,
            title=title,
            isrc=isrc,
            status=status,
            created_at=datetime.datetime(*when, tzinfo=datetime.UTC),
        )
        rows.append((track, [(purposes[0], i % 2 == 0), (purposes[1], i > 0)]))
    return rows


@pytest.mark.parametrize(("language", "zone"), [("en", "UTC"), ("de", "Europe/Berlin"), ("de", "America/New_York")])
def test_python_rows_are_the_template_loops_html(language, zone):
    rows = _rows()
    with translation.override(language), timezone.override(zone):
        expected = _template_rows(rows)
        assert rows_html([(CatalogueTrack.of(track), cells) for track, cells in rows]) == expected
    assert "&lt;b&gt;&quot;Q&amp;A&#x27;s&quot;" in expected and "bo&amp;co@example.test" in expected
    if zone == "Europe/Berlin":
        assert ">01.07.2026</time>" in expected


def test_artist_options_escape_names_and_mark_the_chosen_artist():
    html = artist_options([(3, "Ada"), (12, 'Bo <"&">')], 12)
    assert html == ('<option value="3">Ada</option><option value="12" selected>Bo &lt;&quot;&amp;&quot;&gt;</option>')
    assert artist_options([(3, "Ada")], None) == '<option value="3">Ada</option>'


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize(
    "data",
    [{}, {"q": 'amber "x" <y>', "use": "recommendation", "state": "granted"}, {"changed_from": "bad", "use": "zz"}],
)
def test_the_kept_filter_fields_are_what_the_include_renders_for_these_values(language, data):
    from django.template.loader import render_to_string

    from consent.forms import CatalogueFilterForm
    from labels.catalogue_html import filter_fields

    purposes = [Purpose(pk=1, slug="recommendation", name="Recommendation"), Purpose(pk=2, slug="x", name="X <b>")]
    with translation.override(language):
        form = CatalogueFilterForm({k: data.get(k, "") for k in CatalogueFilterForm.FILTER_KEYS}, purposes=purposes)
        expected = render_to_string(
            "consent/_catalogue_fields.html", {"catalogue_form": form, "catalogue_fields": form.filter_fields()}
        )
        assert filter_fields(form, purposes) == expected
        assert filter_fields(form, purposes) == expected  # kept: the same again
    if "changed_from" in data:
        assert 'class="error"' in expected
    # Another purpose name is another menu, not the kept one.
    with translation.override(language):
        renamed = [purposes[0], Purpose(pk=2, slug="x", name="Renamed")]
        assert "Renamed" in filter_fields(CatalogueFilterForm(form.data, purposes=renamed), renamed)
