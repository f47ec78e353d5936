from django.db import migrations
from django.utils import timezone

PURPOSES = [
    {
        "slug": "recommendation",
        "name": "Recommendation",
        "description": (
            "We may suggest this track to listeners and include it in playlists and radio based on what they "
            "like. Its audio and details are analysed only to decide who might enjoy it."
        ),
        "requires_confirmation": False,
        "ordering": 10,
    },
    {
        "slug": "fraud_detection",
        "name": "Fraud detection",
        "description": (
            "We may compare this track with other uploads and play counts to catch stolen uploads, fake streams "
            "and impersonation. It is used only to protect you and other artists, never to create anything."
        ),
        "requires_confirmation": False,
        "ordering": 20,
    },
    {
        "slug": "generative_training",
        "name": "Generative AI training",
        "description": (
            "We may use this track, including your voice, music and style, to train AI models that generate "
            "new audio. A trained model cannot forget what it learned: withdrawing stops future training, but "
            "models already trained on the track are not retrained."
        ),
        "requires_confirmation": True,
        "ordering": 30,
    },
]

POLICY_SUMMARY = (
    "Nothing you upload is used for anything until you opt in, track by track and use by use. "
    "You can withdraw any permission at any time in one step."
)

POLICY_TEXT = """\
1. What these terms cover. These terms say how the Creator Consent Portal may use the recordings you upload.

2. Opt-in only. We use a track for a purpose (recommendation, fraud detection or generative AI training) only \
after you, or a label you delegated to, have explicitly said yes for that track and that purpose. \
If you have not said yes, the answer is no.

3. Generative AI training. Permission to train generative AI models on a track is asked separately and \
confirmed on its own page. It is never part of another choice.

4. Withdrawing. You can withdraw any permission at any time, in one step. Withdrawal stops every future use \
for that purpose; a model that has already been trained is not retrained.

5. Your record. Every change is written to an audit log that cannot be edited, and you can download a receipt \
for every change.

6. Changes to these terms. We will tell you before any change takes effect. If a change alters what a purpose \
means, permissions given under the old meaning lapse unless you confirm them again.
"""


def seed(apps, schema_editor):
    Purpose = apps.get_model("consent", "Purpose")
    PolicyVersion = apps.get_model("consent", "PolicyVersion")
    for purpose in PURPOSES:
        Purpose.objects.update_or_create(slug=purpose["slug"], defaults=purpose)
    now = timezone.now()
    PolicyVersion.objects.get_or_create(
        version=1,
        defaults={
            "summary": POLICY_SUMMARY,
            "full_text": POLICY_TEXT,
            "published_at": now,
            "effective_at": now,
            "is_material": True,
        },
    )


class Migration(migrations.Migration):
    dependencies = [("consent", "0002_audit_guards")]

    # Reversing leaves the rows: purposes and policy versions are referenced by
    # the audit log, which must outlive any schema change.
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
