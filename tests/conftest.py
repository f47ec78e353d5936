"""Fixtures for the cross-app tests: the tracks app's upload fixtures, reused rather than copied."""

from tracks.tests.conftest import ready_track, upload_track  # noqa: F401 -- registered as fixtures here
