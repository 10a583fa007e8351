"""An exception inside a user's strategy, told as the user needs it.

The engine calls strategy code from its phases (``features``, ``on_start``, ``on_bar`` and,
from inside fills, funding and liquidations, ``on_fill``, ``on_funding``, ``on_liquidation``).
When such a call raises, :func:`strategy_failure` turns the exception into a
:class:`~backtest.strategy.StrategyFailed` whose message names the strategy, the hook, the bar
and its time (UTC) and shows the traceback lines of the user's own code only: frames inside
``backtest`` (the engine) and the Python installation (stdlib, site-packages) are left out.
"""
from __future__ import annotations

import sysconfig
import traceback
from pathlib import Path
from types import TracebackType
from typing import Any

from backtest.errors import utc_text

__all__ = ["HOOKS", "strategy_failure", "user_traceback"]

#: Strategy methods the engine calls, outermost first when several are on the stack.
HOOKS = ("features", "on_start", "on_bar", "on_fill", "on_funding", "on_liquidation", "on_adl", "signal")

_ENGINE = Path(__file__).resolve().parent
_INSTALL = tuple({Path(p).resolve() for key in ("stdlib", "platstdlib", "purelib", "platlib")
                  if (p := sysconfig.get_paths().get(key))})


def _is_user_file(filename: str) -> bool:
    try:
        path = Path(filename).resolve()
    except (OSError, ValueError):
        return False
    if filename.startswith("<") or path.is_relative_to(_ENGINE):
        return False
    return not any(path.is_relative_to(root) for root in _INSTALL)


def user_traceback(exc: BaseException, start: TracebackType | None = None) -> str:
    """The traceback lines of ``exc`` (from frame ``start`` inward) that are in the user's files."""
    tb = start or exc.__traceback__
    frames = [frame for frame in traceback.extract_tb(tb) if _is_user_file(frame.filename)]
    if not frames:
        return "  (no line of your code is on the stack: the error was raised inside margincall)"
    return "".join(traceback.format_list(frames)).rstrip("\n")


def _hook_frame(exc: BaseException, strategy: Any) -> tuple[str, TracebackType] | None:
    """The outermost traceback entry running one of the strategy's hooks, and the hook's name."""
    kind = type(strategy)
    codes = {}
    for hook in HOOKS:
        func = getattr(kind, hook, None)
        code = getattr(func, "__code__", None)
        if code is not None:
            codes[code] = hook
    found = None
    tb = exc.__traceback__
    while tb is not None:
        hook = codes.get(tb.tb_frame.f_code)
        # the outermost hook, except that a signal is named rather than the on_bar trading it
        if hook is not None and (found is None or hook == "signal"):
            found = hook, tb
        tb = tb.tb_next
    return found


def strategy_failure(exc: BaseException, strategy: Any, *, closed: tuple[int, int] | None,
                     current: tuple[int, int]) -> Exception | None:
    """A :class:`~backtest.strategy.StrategyFailed` for an exception raised in ``strategy``'s
    code, or None when the exception did not come through one of its hooks (an engine error,
    re-raised as is).

    Parameters
    ----------
    exc : BaseException
        The exception the engine caught.
    strategy : Strategy
        The run's strategy.
    closed : (int, int) or None
        The bar ``on_bar`` was called for and its close time (UTC ms); None before the loop.
    current : (int, int)
        The bar being processed and the simulated time (UTC ms) of the engine (fills,
        funding and liquidations call their hooks at that instant).
    """
    from backtest.strategy import StrategyFailed

    if isinstance(exc, StrategyFailed) or not isinstance(exc, Exception):
        return None
    found = _hook_frame(exc, strategy)
    if found is None:
        return None
    hook, start = found
    if hook in ("features", "on_start"):
        when = "before the first bar"
    elif hook in ("on_bar", "signal"):
        when = "before the first bar" if closed is None else \
            f"at the close of bar {closed[0]} ({utc_text(closed[1])})"
    else:
        when = f"in bar {current[0]} at {utc_text(current[1])}"
    label = strategy.label() if hasattr(strategy, "label") else type(strategy).__name__
    return StrategyFailed(
        f"strategy {label}: {hook} raised {type(exc).__name__}: {exc} {when}\n"
        f"{user_traceback(exc, start)}\nfix the strategy's {hook}; the run was stopped", exc)
