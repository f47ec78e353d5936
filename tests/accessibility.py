"""axe-core (from the axe-playwright-python package) and layout checks on a Playwright page."""

from __future__ import annotations

from dataclasses import dataclass

from axe_playwright_python.sync_playwright import Axe

_axe = Axe()


@dataclass(frozen=True)
class Finding:
    url: str
    rule: str
    impact: str
    targets: list[str]

    def __str__(self) -> str:
        return f"{self.url}: {self.rule} ({self.impact}) at {', '.join(self.targets[:3])}"


def axe_findings(page) -> list[Finding]:
    """Every violation axe reports on the page as it is now, of any impact level.

    axe's experimental rules run too: one of them (label-content-name-mismatch)
    is WCAG 2.5.3, which the default set leaves out.
    """
    page.evaluate(_axe.axe_script)
    experimental = page.evaluate("axe.getRules(['experimental']).map(rule => rule.ruleId)")
    options = {"resultTypes": ["violations"], "rules": {rule: {"enabled": True} for rule in experimental}}
    results = _axe.run(page, options=options)
    return [
        Finding(
            url=page.url,
            rule=violation["id"],
            impact=violation.get("impact") or "",
            targets=[", ".join(map(str, node["target"])) for node in violation["nodes"]],
        )
        for violation in results.response["violations"]
        for _node in violation["nodes"][:1]
    ]


def horizontal_overflow(page) -> int:
    """How many CSS pixels the document is wider than the viewport (0 when it fits)."""
    return page.evaluate("Math.max(0, document.documentElement.scrollWidth - window.innerWidth)")
