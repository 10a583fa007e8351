"""The scenario set of a platform run: stored windows, stress shocks and Monte Carlo paths.

A :class:`Scenario` is small and picklable: its exogenous paths are rebuilt from its own
fields in whichever process runs it (a shock from ``drop``; a Monte Carlo path from ``seed``
with the set's fitted model; a stored window carries its paths, read once from the store by
the caller). ``depth_scale`` multiplies every symbol's default book depth (a liquidity
drought below 1). The result of a scenario therefore depends on the scenario alone, never on
which worker ran it or in which order (determinism on the local pool, Ray or serially).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from backtest.cascade.paths import ExogenousPath, montecarlo_paths, shock_path
from backtest.platform.params import PlatformError

__all__ = ["Scenario", "ScenarioSetup", "build_scenarios"]

KINDS = ("window", "shock", "montecarlo")


@dataclass(frozen=True)
class ScenarioSetup:
    """What every generated scenario shares.

    Attributes
    ----------
    start_prices : dict
        Start price per symbol (quote per base) of shocks and Monte Carlo paths.
    seconds : int
        Length of generated paths, seconds.
    start_ms : int
        Start of generated paths, UTC ms (selects the tier tables in force).
    step_s : float
        Cascade step, seconds.
    shock_start_s, shock_seconds : int
        When a shock starts and how long its move lasts.
    model : ReturnModel or None
        Fitted risk-lab model for Monte Carlo scenarios.
    """

    start_prices: dict[str, float]
    seconds: int = 720
    start_ms: int = 1_760_130_000_000
    step_s: float = 1.0
    shock_start_s: int = 60
    shock_seconds: int = 180
    model: Any = None


@dataclass(frozen=True)
class Scenario:
    """One scenario: ``kind`` (window, shock, montecarlo), its parameter and the depth scale."""

    scenario_id: int
    kind: str
    name: str
    depth_scale: float = 1.0
    drop: float | None = None
    seed: int | None = None
    paths: dict[str, ExogenousPath] | None = field(default=None, repr=False)

    def build_paths(self, setup: ScenarioSetup) -> dict[str, ExogenousPath]:
        """The exogenous path of every symbol."""
        if self.kind == "window":
            return dict(self.paths or {})
        if self.kind == "shock":
            return {s: shock_path(start_price=p, seconds=setup.seconds, drop=float(self.drop),
                                  shock_start_s=setup.shock_start_s, shock_seconds=setup.shock_seconds,
                                  start_ms=setup.start_ms, step_s=setup.step_s)
                    for s, p in sorted(setup.start_prices.items())}
        return montecarlo_paths(setup.model, seed=int(self.seed), start_prices=setup.start_prices,
                                seconds=setup.seconds, start_ms=setup.start_ms, step_s=setup.step_s)


def build_scenarios(*, windows: dict[str, dict[str, ExogenousPath]] | None = None,
                    shocks: Sequence[float] = (), montecarlo: int = 0, mc_seed: int = 0,
                    depth_scales: Sequence[float] = (1.0,)) -> list[Scenario]:
    """Windows, shocks and ``montecarlo`` seeded paths, each at every depth scale, numbered from 0.

    Monte Carlo path ``i`` draws with seed ``mc_seed * 1_000_003 + i`` (distinct per path,
    reproducible per set).

    Raises
    ------
    PlatformError
        No scenario at all, a bad depth scale or shock.
    """
    if not depth_scales:
        raise PlatformError("scenario set: expected at least one depth scale, e.g. --depth-scale 1,0.5")
    for d in depth_scales:
        if not d > 0:
            raise PlatformError(f"scenario set: depth scale {d!r}: expected a number > 0 (1 = default books, "
                                "0.25 = a quarter of the depth)")
    if montecarlo < 0:
        raise PlatformError(f"scenario set: Monte Carlo paths must be >= 0, found {montecarlo}")
    base: list[tuple[str, str, dict[str, Any]]] = []
    for name, paths in (windows or {}).items():
        base.append(("window", name, {"paths": paths}))
    for drop in shocks:
        if not drop < 1:
            raise PlatformError(f"scenario set: shock {drop!r}: expected a fall fraction < 1 (0.1 = -10 %)")
        base.append(("shock", f"shock {drop:+.3g}", {"drop": float(drop)}))
    for i in range(montecarlo):
        base.append(("montecarlo", f"mc {i}", {"seed": mc_seed * 1_000_003 + i}))
    if not base:
        raise PlatformError("scenario set: no scenario; pass --window START/END, --shock 0.1,0.2 or --mc N")
    out = []
    for kind, name, extra in base:
        for scale in depth_scales:
            label = name if len(depth_scales) == 1 else f"{name} depth x{scale:g}"
            out.append(Scenario(len(out), kind, label, depth_scale=float(scale), **extra))
    return out
