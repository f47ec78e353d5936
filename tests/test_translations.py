"""The German catalogue stays complete, correct and compiled.

makemessages (GNU xgettext) extracts every message the code and templates
mark, into a scratch directory; each one must have a German translation in
the committed locale/de/LC_MESSAGES/django.po, with the same placeholders,
and the committed .mo must be that .po compiled.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

from conftest import service_missing

ROOT = Path(settings.BASE_DIR)
PO_PATH = ROOT / "locale" / "de" / "LC_MESSAGES" / "django.po"
MO_PATH = PO_PATH.with_suffix(".mo")
# The same folders `make messages` leaves out (README): no user-facing text there.
IGNORED = ["var", "benchmarks", "tests", "test-artifacts", "media", "staticfiles"]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdf]")


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> polib.POFile:
    """Every msgid in the code and templates today, extracted afresh."""
    if not shutil.which("xgettext") or not shutil.which("msgmerge"):
        service_missing("GNU gettext is not installed (apt-get install gettext)")
    scratch = tmp_path_factory.mktemp("messages")
    # makemessages writes into any locale/ folder of the tree it walks, so it
    # walks a copy without one; the committed catalogue is never touched.
    source = scratch / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".*", "locale", "__pycache__", *IGNORED))
    cwd = Path.cwd()
    try:
        os.chdir(source)
        with override_settings(LOCALE_PATHS=[str(scratch / "locale")]):
            call_command("makemessages", locale=["de"], no_location=True, verbosity=0)
    finally:
        os.chdir(cwd)
    return polib.pofile(str(scratch / "locale" / "de" / "LC_MESSAGES" / "django.po"))


def _key(entry: polib.POEntry) -> tuple[str, str, str]:
    return (entry.msgctxt or "", entry.msgid, entry.msgid_plural or "")


def _translations(entry: polib.POEntry) -> list[str]:
    if entry.msgid_plural:
        return [entry.msgstr_plural.get(0, ""), entry.msgstr_plural.get(1, "")]
    return [entry.msgstr]


def test_every_message_the_code_marks_has_a_german_translation(extracted):
    committed = {_key(e): e for e in polib.pofile(str(PO_PATH)) if not e.obsolete}
    untranslated = [
        entry.msgid
        for entry in extracted
        if _key(entry) not in committed
        or "fuzzy" in committed[_key(entry)].flags
        or not all(_translations(committed[_key(entry)]))
    ]
    assert untranslated == [], (
        f"{len(untranslated)} message(s) without a German translation; run `make messages` and translate: "
        + "; ".join(repr(m) for m in untranslated[:20])
    )
    assert len(extracted) > 500, "the extraction found suspiciously few messages"


def test_the_catalogue_keeps_no_message_the_code_no_longer_uses(extracted):
    current = {_key(e) for e in extracted}
    stale = [e.msgid for e in polib.pofile(str(PO_PATH)) if not e.obsolete and _key(e) not in current]
    assert stale == [], "remove (or mark obsolete) messages nothing uses: " + "; ".join(map(repr, stale[:20]))


def test_every_translation_keeps_the_placeholders_of_its_message():
    # German's singular form stands for exactly one, like English's: each form
    # keeps the placeholders of the English form it translates.
    wrong = []
    for entry in polib.pofile(str(PO_PATH)):
        sources = [entry.msgid, entry.msgid_plural] if entry.msgid_plural else [entry.msgid]
        for source, text in zip(sources, _translations(entry), strict=True):
            if set(PLACEHOLDER.findall(text)) != set(PLACEHOLDER.findall(source)):
                wrong.append(entry.msgid)
    assert wrong == []


def test_german_has_two_plural_forms_and_the_header_is_not_fuzzy():
    po = polib.pofile(str(PO_PATH))
    assert not po.metadata_is_fuzzy
    assert po.metadata["Plural-Forms"] == "nplurals=2; plural=(n != 1);"


def test_the_committed_mo_file_is_the_po_file_compiled():
    po = {_key(e): _translations(e) for e in polib.pofile(str(PO_PATH)) if e.translated()}
    mo = {_key(e): _translations(e) for e in polib.mofile(str(MO_PATH)) if e.msgid}
    assert mo == po, "run `make messages` (compilemessages) and commit the .mo file"
