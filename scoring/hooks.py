"""Work other apps add to a scoring transaction, without scoring importing them.

An app registers a callable from its AppConfig.ready (insights writes its daily
aggregates this way). The engine calls every registered hook inside the
transaction that wrote the days' user, account and product snapshots, after
they are written: a hook's rows commit or roll back with the scores, and a
recompute of the days runs the hooks again, so what they write must be a pure
function of the snapshots and rollup of those days (delete, then insert).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

# hook(model, days): `days` is every day the transaction (re)computed, in order.
DayHook = Callable[["ScoringModel", Sequence[date]], None]  # noqa: F821 - a name for readers only

_day_hooks: list[DayHook] = []


def register_day_hook(hook: DayHook) -> None:
    """Run `hook(model, days)` after every scoring transaction's snapshots (idempotent)."""
    if hook not in _day_hooks:
        _day_hooks.append(hook)


def run_day_hooks(model, days: Sequence[date]) -> None:
    for hook in list(_day_hooks):
        hook(model, days)
