"""The catalogue's table rows, written out in Python.

A page has up to 500 rows of eleven cells. In the template engine each cell is
a variable node with its filters (escaping, `default`, `date` with the time
zone and the locale's format), and their loop cost more than the rest of the
page together. Here the parts that are the same on every row (the translated
labels, the status names, the consent cells for a given set of grants, a
day's short date) are built once per page and each row only escapes its own
values. The HTML is what the template loop wrote, character for character
(labels/tests/test_catalogue_html.py renders both and compares them).
"""

from __future__ import annotations

import datetime
import functools
import html
from collections.abc import Iterable

from django.template.loader import render_to_string
from django.utils import formats, timezone, translation
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

from consent.forms import CatalogueFilterForm
from consent.models import Purpose
from labels.selectors import CatalogueRow
from tracks.models import Track


def consent_cells(cells: list[tuple[Purpose, bool]], opted_in: str, no: str) -> str:
    return "".join(f'<td data-label="{escape(p.name)}">{opted_in if g else no}</td>' for p, g in cells)


def rows_html(rows: Iterable[CatalogueRow]) -> SafeString:
    """The <tr> of each (track, [(purpose, granted)]) row, in the active language and time zone."""
    artist_label = escape(gettext("Artist"))
    status_label = escape(gettext("Status"))
    uploaded_label = escape(gettext("Uploaded"))
    untitled = escape(gettext("Untitled track"))
    # Not inside the f-strings: makemessages does not look into them.
    yes_word, no_word = escape(gettext("Opted in")), escape(gettext("No"))
    opted_in = f'<span class="badge badge--ok">{yes_word}</span>'
    no = f'<span class="muted">{no_word}</span>'
    # str() first: escape() of a lazy name is lazy again, translated anew at every use.
    statuses = {value: escape(str(name)) for value, name in Track.Status.choices}
    cells_for: dict[tuple[bool, ...], str] = {}
    days: dict[datetime.date, str] = {}
    parts = []
    for track, cells in rows:
        key = tuple(g for _p, g in cells)
        tds = cells_for.get(key)
        if tds is None:
            tds = cells_for[key] = consent_cells(cells, opted_in, no)
        uploaded = track.created_at
        if timezone.is_aware(uploaded):
            uploaded = timezone.localtime(uploaded)
        date = uploaded.date()
        day = days.get(date)
        if day is None:
            day = days[date] = escape(formats.date_format(uploaded, "SHORT_DATE_FORMAT"))
        status = statuses.get(track.status) or html.escape(track.status)
        uuid = str(track.uuid)
        # The row's own values are plain strings: html.escape is what Django's escape calls, without its
        # lazy-string wrapper (a few microseconds a call, five calls a row).
        title = html.escape(track.title) if track.title else untitled
        parts.append(
            "\n    <tr>\n"
            f'      <td><input type="checkbox" name="track" value="{uuid}" id="t-{uuid}" data-row></td>\n'
            f'      <th scope="row"><label for="t-{uuid}">{title}</label></th>\n'
            f'      <td data-label="ISRC">{html.escape(track.isrc)}</td>\n'
            f'      <td data-label="{artist_label}">{html.escape(track.owner_name)}</td>\n'
            f'      <td data-label="{status_label}">{status}</td>\n'
            f'      <td data-label="{uploaded_label}"><time datetime="{uploaded.isoformat()}">{day}</time></td>\n'
            f"      {tds}\n"
            "    </tr>\n    "
        )
    return mark_safe("".join(parts))  # noqa: S308 -- every value above is escaped; the rest is literal markup


def artist_options(roster: Iterable[tuple[int, str]], selected: int | None) -> SafeString:
    """The artist menu's <option>s (a roster has hundreds), the chosen one selected."""
    return mark_safe(  # noqa: S308 -- the names are escaped, the ids are integers
        "".join(
            f'<option value="{int(pk)}"{" selected" if pk == selected else ""}>{html.escape(name)}</option>'
            for pk, name in roster
        )
    )


def filter_fields(form: CatalogueFilterForm | None, purposes: list[Purpose]) -> SafeString:
    """The shared catalogue filter's fields (consent/_catalogue_fields.html), as the include rendered them.

    Django renders each widget, label and option through its own template, about
    1.5 ms for these six fields; their HTML depends only on the language, the
    values asked for and the purposes, which repeat from page to page of a
    catalogue, so it is kept per process for the last few hundred of those.
    """
    data = form.data if form is not None else {}
    values = tuple((key, str(data.get(key) or "")) for key in CatalogueFilterForm.FILTER_KEYS)
    return _filter_fields(translation.get_language(), values, tuple((p.slug, p.name) for p in purposes))


@functools.lru_cache(maxsize=256)
def _filter_fields(
    language: str, values: tuple[tuple[str, str], ...], purposes: tuple[tuple[str, str], ...]
) -> SafeString:
    with translation.override(language):
        form = CatalogueFilterForm(dict(values), purposes=[Purpose(slug=slug, name=name) for slug, name in purposes])
        return mark_safe(  # noqa: S308 -- the template's own output, escaped by it
            render_to_string(
                "consent/_catalogue_fields.html", {"catalogue_form": form, "catalogue_fields": form.filter_fields()}
            )
        )
