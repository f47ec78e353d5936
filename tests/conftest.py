"""Fixtures for the cross-app tests: the tracks app's upload fixtures, reused rather than copied."""

from tracks.tests.conftest import ready_track, track_rows_fail_to_save, upload_track  # noqa: F401 -- registered as fixtures here
