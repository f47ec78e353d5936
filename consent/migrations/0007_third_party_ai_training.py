"""The purpose "AI training by other companies", announced through a new policy version.

The purpose starts off everywhere (no Consent row means not granted) and needs
the same separate confirmation as generative training.

The policy version is created published, not as a draft, so that nobody has
to remember a step in the admin for the announcement to go out: the
notification sweep (beat, every minute) restarts any fan-out of a version
published in the last days that has not reached every eligible user, and for
this version it has not started at all. Eligible means active and signed up
before the version was published; accounts created later signed up under
these terms. On a fresh database (tests, the quick start) nobody is eligible,
so nothing is sent. It is not a material change: nothing changes for anyone
until they opt in, so no banner asks for an acknowledgement; the notice still
goes to every active user.
"""

from django.db import migrations
from django.utils import timezone

SLUG = "third_party_ai_training"

PURPOSE = {
    "slug": SLUG,
    "name": "AI training by other companies",
    "description": (
        "Other companies (AI developers, dataset builders) may use this track, including your voice, music and "
        "style, to train their AI models. This is a licence to third parties, separate from anything you allow "
        "the platform itself. Until you allow it, every public copy of the track, its page and our site-wide "
        "files tell AI crawlers that training is not allowed; once allowed, they say it is. Withdrawing changes "
        "those signals at once, but it cannot make a company that already trained on the track forget it."
    ),
    "requires_confirmation": True,
    "ordering": 40,
}

SUMMARY = (
    "A new, separate choice: \u201cAI training by other companies\u201d. It is off for every track until you "
    "allow it, and public track pages tell AI crawlers your answer. Nothing changes unless you opt in."
)

ADDED_TEXT = """\
7. AI training by other companies. Permission for the platform to use a track is never a licence to anyone \
else. Whether other companies may train AI models on a track is a separate use, off for every track until you \
allow it on its own confirmation page.

8. Public tracks. A track is shown publicly only if you make it public. Its public page, its audio and our \
site-wide files for crawlers (robots.txt, ai.txt, tdmrep.json) tell AI crawlers and dataset builders your answer \
for AI training by other companies, and the copy of the audio we serve carries the same answer inside the file. \
Until you allow it, every one of them says that AI training is not allowed.
"""


def add_purpose_and_announce(apps, schema_editor):
    Purpose = apps.get_model("consent", "Purpose")
    PolicyVersion = apps.get_model("consent", "PolicyVersion")
    if Purpose.objects.filter(slug=SLUG).exists():
        return
    Purpose.objects.create(**PURPOSE)
    previous = PolicyVersion.objects.filter(published_at__isnull=False).order_by("-version").first()
    latest = PolicyVersion.objects.order_by("-version").first()
    now = timezone.now()
    base = previous.full_text.rstrip("\n") + "\n\n" if previous else ""
    PolicyVersion.objects.create(
        version=(latest.version + 1) if latest else 1,
        summary=SUMMARY,
        full_text=base + ADDED_TEXT,
        published_at=now,
        effective_at=now,
        is_material=False,
    )


class Migration(migrations.Migration):
    dependencies = [("consent", "0006_bulk_change_items_and_lease")]

    # Reversing leaves the rows: purposes and policy versions are referenced by
    # the audit log, which must outlive any schema change.
    operations = [migrations.RunPython(add_purpose_and_announce, migrations.RunPython.noop)]
