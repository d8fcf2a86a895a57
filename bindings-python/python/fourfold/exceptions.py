"""The exceptions fourfold raises, rooted at :class:`FourfoldError`.

Every error of the Rust core maps to exactly one of these classes (see ``src/error.rs``).
A Rust panic becomes :class:`FourfoldPanic`, a :class:`FourfoldError`; it never crashes the interpreter.
Bad input also subclasses :class:`ValueError`, and file trouble :class:`OSError`, so generic handlers keep working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from fourfold._fourfold import Change, Decision

__all__ = [
    "FourfoldError",
    "PolicyDenied",
    "GatePending",
    "StaleContext",
    "BudgetExceeded",
    "InvalidPolicy",
    "InvalidRequest",
    "ConfigError",
    "ApprovalError",
    "TraceError",
    "TraceCorrupt",
    "ContextError",
    "CostError",
    "UnknownModel",
    "PluginError",
    "StoreError",
    "MissingControl",
    "FourfoldPanic",
]


class FourfoldError(Exception):
    """The root of every fourfold error."""


class _Decided(FourfoldError):
    """An error that carries the policy's decision; its fields read through to it."""

    decision: Decision

    @property
    def rule_id(self) -> Optional[str]:
        """The rule that decided (``None`` when nothing matched)."""
        return self.decision.rule_id

    @property
    def reason(self) -> str:
        """Why, in one line."""
        return self.decision.reason

    @property
    def approval_id(self) -> Optional[str]:
        """The approval that holds the request, if a review gate does."""
        return self.decision.approval_id


class PolicyDenied(_Decided):
    """The policy denied the request; ``rule_id`` names the rule (``None`` when nothing matched)."""


class GatePending(_Decided):
    """A review gate holds the request until ``approval_id`` is approved; ask again after."""


class StaleContext(_Decided):
    """The ``context-fresh`` gate held the action: ``changes`` lists the sections read that have changed since.

    Call ``session.reread()`` and decide again.
    """

    changes: list[Change]


class BudgetExceeded(FourfoldError):
    """A hard budget limit would be crossed; nothing was recorded or reserved."""

    budget: str
    unit: str
    limit: int
    spent: int
    reserved: int
    requested: int


class InvalidPolicy(FourfoldError, ValueError):
    """A malformed policy: bad TOML, an unknown field, a bad pattern. The message names the place."""


class InvalidRequest(FourfoldError, ValueError):
    """A malformed request or argument."""


class ConfigError(FourfoldError, ValueError):
    """A malformed ``fourfold.toml``, budget, price table or option."""


class ApprovalError(FourfoldError):
    """An unknown, expired or already settled approval."""


class TraceError(FourfoldError, OSError):
    """The trace could not be written or read."""


class TraceCorrupt(TraceError):
    """The trace file is damaged: a bad checksum, a broken hash chain, a missing or reordered frame."""


class ContextError(FourfoldError):
    """The context store could not read a file or its snapshot."""


class CostError(FourfoldError):
    """The cost meter could not price or record a call."""


class UnknownModel(CostError, ValueError):
    """A model or encoding that fourfold cannot count or price."""


class PluginError(FourfoldError):
    """A plugin is malformed, or raised where its error cannot be returned (``on_event``)."""


class StoreError(FourfoldError, OSError):
    """The approval or snapshot store failed; nothing already stored is lost."""


class MissingControl(FourfoldError):
    """The session's ``Fourfold`` was built without the control this call needs."""


class FourfoldPanic(FourfoldError):
    """A bug in fourfold: a Rust panic, caught before it reached Python. The message says where."""

