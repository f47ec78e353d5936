"""Rules about the test suite itself, checked like any other behaviour."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The one place allowed to skip: it fails instead when PORTAL_REQUIRE_SERVICES is set.
ALLOWED = {ROOT / "conftest.py"}
SKIPPING = {"skip", "skipif", "importorskip", "xfail"}


def _test_sources():
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if parts[0].startswith(".") or parts[0] in {"var", "node_modules"}:
            continue
        if path in ALLOWED or not (path.name.startswith("test_") or path.name == "conftest.py"):
            continue
        yield path


def _skips_in(source: str) -> list[int]:
    """Lines of `pytest.skip(...)`, `pytest.mark.skipif`, `pytest.importorskip(...)`… in a module."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in SKIPPING:
            owner = node.value
            if {getattr(owner, "id", None), getattr(owner, "attr", None)} & {"pytest", "mark"}:
                lines.append(node.lineno)
    return sorted(lines)


def test_no_test_skips_except_through_service_missing():
    # A direct skip passes CI silently; service_missing (root conftest) turns a
    # missing service into a failure when PORTAL_REQUIRE_SERVICES=1.
    offenders = [f"{path.relative_to(ROOT)}:{line}" for path in _test_sources() for line in _skips_in(path.read_text())]
    assert offenders == [], "use conftest.service_missing(reason) instead of skipping: " + ", ".join(offenders)


def test_the_rule_sees_every_way_of_skipping():
    source = (
        "import pytest\n"
        "def test_a():\n    pytest.skip('no database')\n"
        "@pytest.mark.skipif(True, reason='')\ndef test_b():\n    pass\n"
        "redis = pytest.importorskip('redis')\n"
        "def test_c(service_missing):\n    service_missing('redis')\n"
    )
    assert _skips_in(source) == [3, 4, 7]
