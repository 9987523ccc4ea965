"""What a check returns and what a validation run returns: plain data, JSON-ready."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass
class CheckResult:
    name: str
    severity: Severity
    passed: bool
    value: Any                      # the figure the check is decided on
    threshold: Any = None           # what the figure was held against (text, for people)
    message: str = ""
    figures: dict[str, Any] = field(default_factory=dict)   # supporting figures
    examples: list[dict[str, Any]] = field(default_factory=list)  # up to N offending rows
    skipped: bool = False           # not applicable to this data (counts as passed)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def skipped(name: str, severity: Severity, why: str) -> CheckResult:
    return CheckResult(name, severity, True, None, message=f"skipped: {why}", skipped=True)


@dataclass
class Report:
    data: str
    kind: str
    rows: int
    fingerprint: str
    checks: list[CheckResult]
    settings: dict[str, Any] = field(default_factory=dict)
    gx: dict[str, Any] | None = None  # the Great Expectations run, when asked for

    @property
    def passed(self) -> bool:
        """Passed when no error-level check failed; warnings are reported but do not fail."""
        return not any(c.severity == "error" and not c.passed for c in self.checks)

    @property
    def warnings(self) -> int:
        return sum(c.severity == "warning" and not c.passed for c in self.checks)

    def check(self, name: str) -> CheckResult:
        return next(c for c in self.checks if c.name == name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "kind": self.kind,
            "rows": self.rows,
            "fingerprint": self.fingerprint,
            "passed": self.passed,
            "errors": sum(c.severity == "error" and not c.passed for c in self.checks),
            "warnings": self.warnings,
            "settings": self.settings,
            "checks": [c.as_dict() for c in self.checks],
            **({"gx": self.gx} if self.gx is not None else {}),
        }
