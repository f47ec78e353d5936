"""Byte-level guesses shared by the audio and image wrappers, to name what a wrong file is."""

from __future__ import annotations

import codecs


def looks_like_text(sample: bytes) -> bool:
    """Whether the start of a file reads as printable UTF-8 text."""
    # Incremental, so a character cut in two at the end of the sample still counts.
    try:
        decoded = codecs.getincrementaldecoder("utf-8")().decode(sample)
    except UnicodeDecodeError:
        return False
    return bool(decoded) and all(ch.isprintable() or ch in "\r\n\t" for ch in decoded)
