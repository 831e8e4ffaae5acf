"""The bad-input catalogue's bookkeeping: one table row per case, the outcome each run observed, the tally.

A case gives bad or edge input to one node (or to the drive_ops function a node hands
it to) and says what must happen: a clear error, whose text contains every ``needle``
(the fix, with numbers), or a correct output, which its check confirms. Whatever
happens is classified like the issue's audit did:

- ``clear error``: the expected refusal, naming the fix;
- ``correct output``: the run succeeded and the check held;
- ``unclear``: it stopped, but not with the expected text (or when it should have run);
- ``silent``: it ran although it should have refused, or its output is wrong;
- ``crash``: the run died (the process, the server, or a hang).

The tests assert the expected class, and ``tests/conftest.py`` prints the tally of every
case run in the session, in the issue's form (tried / clear error / correct output /
unclear / silent / crash).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

CLASSES = ("clear error", "correct output", "unclear", "silent", "crash")
TALLY: Counter = Counter()
RESULTS: list[tuple[str, str, str]] = []


@dataclass(frozen=True)
class Case:
    """One row: ``id``, the ``node`` it reaches, what ``given``, and the expected outcome.

    ``needles`` (error cases) are substrings the message must contain; ``check`` (output
    cases) gets the run's result and returns True when it is correct.
    """

    id: str
    node: str
    given: str
    needles: tuple[str, ...] = ()
    check: Callable[[object], bool] | None = field(default=None, compare=False)

    @property
    def expected(self) -> str:
        return "correct output" if self.check is not None else "clear error"

    def __str__(self) -> str:
        return self.id


def classify(case: Case, run: Callable[[], object]) -> tuple[str, str]:
    """Run ``run()`` for ``case``; returns (observed class, detail) and records it in the tally."""
    try:
        result = run()
    except Exception as err:  # noqa: BLE001 - every failure is what the catalogue measures
        message = f"{type(err).__name__}: {err}"
        if case.check is None and all(n in str(err) for n in case.needles):
            observed = "clear error"
        else:
            observed = "unclear"
        return _record(case, observed, message)
    except BaseException as err:
        _record(case, "crash", f"{type(err).__name__}: {err}")
        raise
    if case.check is None:
        return _record(case, "silent", f"ran without an error and returned {str(result)[:300]}")
    ok = case.check(result)
    return _record(case, "correct output" if ok else "silent", f"check {'held' if ok else 'failed'} on {str(result)[:300]}")


def record_observed(case: Case, observed: str, detail: str) -> tuple[str, str]:
    """Record an outcome classified by the caller (e.g. from a server's /history entry)."""
    return _record(case, observed, detail)


def _record(case: Case, observed: str, detail: str) -> tuple[str, str]:
    TALLY[observed] += 1
    RESULTS.append((case.id, observed, detail))
    return observed, detail


def assert_outcome(case: Case, observed: str, detail: str) -> None:
    assert observed == case.expected, (f"{case.id} ({case.node}: {case.given}) should give {case.expected}, "
                                       f"gave {observed}: {detail}; expected text: {case.needles}")


def tally_line() -> str:
    """``tried N: E clear error, C correct output, U unclear, S silent, X crash``."""
    tried = sum(TALLY.values())
    return f"tried {tried}: " + ", ".join(f"{TALLY.get(c, 0)} {c}" for c in CLASSES)
