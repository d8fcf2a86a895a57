"""fourfold: the in-process control layer for AI agents.

Four controls on one call path: the :class:`Policy` (may the agent do this), the :class:`Tracer`
(what did it do, and why), the :class:`ContextStore` (is it acting on what is true now) and the
:class:`CostMeter` (can we afford it). :class:`Fourfold` builds them together and hands out one
:class:`AgentSession` per run.

>>> import fourfold
>>> ff = fourfold.Fourfold('''
... [[rule]]
... id = "read-docs"
... effect = "allow"
... read = ["docs/**"]
... ''', root="/repo")
>>> with ff.session("coder", task="T-1") as session:
...     session.guard(read="docs/intro.md").rule_id
'read-docs'
"""

from fourfold._fourfold import (
    AgentSession,
    Answer,
    Approval,
    Budget,
    Change,
    ChangeFeed,
    ContextStore,
    CostMeter,
    CostRecord,
    Decision,
    Event,
    Fourfold,
    Hit,
    Policy,
    Rename,
    Request,
    Reservation,
    Run,
    Section,
    SharedDocuments,
    Span,
    Tracer,
    TraceReader,
    __version__,
    count_chat_tokens,
    count_tokens,
    is_estimate,
)
from fourfold.exceptions import (
    ApprovalError,
    BudgetExceeded,
    ConfigError,
    ContextError,
    CostError,
    FourfoldError,
    FourfoldPanic,
    GatePending,
    InvalidPolicy,
    InvalidRequest,
    MissingControl,
    PluginError,
    PolicyDenied,
    StaleContext,
    StoreError,
    TraceCorrupt,
    TraceError,
    UnknownModel,
)

__all__ = [
    "AgentSession",
    "Answer",
    "Approval",
    "ApprovalError",
    "Budget",
    "BudgetExceeded",
    "Change",
    "ChangeFeed",
    "ConfigError",
    "ContextError",
    "ContextStore",
    "CostError",
    "CostMeter",
    "CostRecord",
    "Decision",
    "Event",
    "Fourfold",
    "FourfoldError",
    "FourfoldPanic",
    "GatePending",
    "Hit",
    "InvalidPolicy",
    "InvalidRequest",
    "MissingControl",
    "PluginError",
    "Policy",
    "Rename",
    "PolicyDenied",
    "Request",
    "Reservation",
    "Run",
    "Section",
    "SharedDocuments",
    "Span",
    "StaleContext",
    "StoreError",
    "TraceCorrupt",
    "TraceError",
    "TraceReader",
    "Tracer",
    "UnknownModel",
    "__version__",
    "count_chat_tokens",
    "count_tokens",
    "is_estimate",
]
