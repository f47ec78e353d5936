"""The purpose names and descriptions the data migrations seed, marked for translation.

The rows keep the English text (the audit log and the API quote it); pages and
emails show it through the `translated` filter (consent_i18n), which finds it here.
"""

from django.utils.translation import gettext_noop

SEEDED_TEXT = [
    gettext_noop("Recommendation"),
    gettext_noop(
        "We may suggest this track to listeners and include it in playlists and radio based on what they"
        " like. Its audio and details are analysed only to decide who might enjoy it."
    ),
    gettext_noop("Fraud detection"),
    gettext_noop(
        "We may compare this track with other uploads and play counts to catch stolen uploads, fake "
        "streams and impersonation. It is used only to protect you and other artists, never to create "
        "anything."
    ),
    gettext_noop("Generative AI training"),
    gettext_noop(
        "We may use this track, including your voice, music and style, to train AI models that generate "
        "new audio. A trained model cannot forget what it learned: withdrawing stops future training, "
        "but models already trained on the track are not retrained."
    ),
    gettext_noop("AI training by other companies"),
    gettext_noop(
        "Other companies (AI developers, dataset builders) may use this track, including your voice, "
        "music and style, to train their AI models. This is a licence to third parties, separate from "
        "anything you allow the platform itself. Until you allow it, every public copy of the track, its"
        " page and our site-wide files tell AI crawlers that training is not allowed; once allowed, they"
        " say it is. Withdrawing changes those signals at once, but it cannot make a company that "
        "already trained on the track forget it."
    ),
]

# AuditEvent.delegation_words (English in receipts, translated on the audit log page).
DELEGATION_WORDS = [
    gettext_noop("nothing"),
    gettext_noop("withdraw only"),
    gettext_noop("grant and withdraw"),
    gettext_noop("invited"),
    gettext_noop("requested"),
    gettext_noop("active"),
    gettext_noop("declined"),
    gettext_noop("ended"),
]

# accounts.Delegation.Scope labels, as the label forms show them.
DELEGATION_SCOPES = [
    gettext_noop("Nothing"),
    gettext_noop("Withdraw only"),
    gettext_noop("Grant and withdraw"),
]
