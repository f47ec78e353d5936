"""The one way an email's three templates (templates/emails/<kind>/) become its subject, text and HTML."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string


def render_email(kind: str, context: dict[str, Any]) -> tuple[str, str, str]:
    """(subject on one line, plain text, HTML) of the email `kind` for this context."""
    prefix = f"emails/{kind}"
    subject = " ".join(render_to_string(f"{prefix}/subject.txt", context).split())
    return subject, render_to_string(f"{prefix}/body.txt", context), render_to_string(f"{prefix}/body.html", context)
