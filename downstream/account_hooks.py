"""downstream's part in "download my data" (accounts.hooks).

The usage ledger is append-only and keyed by ids, not by personal data, so an
account deletion leaves it alone: it is the record of what systems did with
tracks while they were granted.
"""

from __future__ import annotations

from accounts.hooks import ExportSection, export_sections


def _usage_rows(user) -> list[dict]:
    from downstream.selectors import usage_ledger_for_artist

    return usage_ledger_for_artist(user.pk)


def register() -> None:
    export_sections.register(
        ExportSection(
            "downstream/usage_ledger.json",
            _usage_rows,
            order=75,
            description="Every recorded use of your tracks by a downstream system (the usage ledger).",
        )
    )
