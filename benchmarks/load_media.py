"""Audio for the load test: small valid recordings, each with bytes of its own."""

from __future__ import annotations

import io
import secrets
import wave


def unique_wav(seconds: float = 1.5) -> bytes:
    """A mono 8 kHz WAV of noise: valid for the portal, and never a duplicate of another upload."""
    frames = int(8000 * seconds)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(secrets.token_bytes(frames * 2))
    return buffer.getvalue()
