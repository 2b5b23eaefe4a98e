"""The counts a reliability test reports: one guarantee, how many hostile cases it tried, how
many the toolkit held against.

Each test records its counts before it asserts, so a failing guarantee is counted as failing.
Records are JSON lines appended to $EDGEDISTILL_RELIABILITY_LOG when it is set (what
benchmarks/reliability.py sets to write RELIABILITY.md); without it they are not kept.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

LOG_ENV = "EDGEDISTILL_RELIABILITY_LOG"


@dataclass
class Tally:
    """Counts of one guarantee: call `held(case)` or `broke(case, why)` once per case tried."""

    guarantee: str  # what the user can rely on, one sentence
    how: str  # how the cases are made and judged, one sentence
    area: str  # the section of RELIABILITY.md: configuration, weights, archives, ...
    tried: int = 0
    failures: list[str] = field(default_factory=list)

    def held(self, case: str = "") -> None:
        self.tried += 1

    def broke(self, case: str, why: str) -> None:
        self.tried += 1
        self.failures.append(f"{case}: {why}")

    @property
    def held_count(self) -> int:
        return self.tried - len(self.failures)

    def report(self, test: str = "") -> None:
        """Append this tally to the log (when one is set), then fail the test if any case
        broke (naming the first few)."""
        path = os.environ.get(LOG_ENV)
        if path:
            document = asdict(self) | {"held": self.held_count, "test": test}
            document["failures"] = self.failures[:20]
            with open(path, "a", encoding="utf-8") as log:
                log.write(json.dumps(document) + "\n")
        assert self.tried > 0, f"{self.guarantee}: no case was tried"
        assert not self.failures, (
            f"{self.guarantee}: {len(self.failures)} of {self.tried} cases broke: "
            + "; ".join(self.failures[:5])
        )
