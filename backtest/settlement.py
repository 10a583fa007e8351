"""The takeover settlement of a liquidated pool: one pure function, one definition.

Both the event path (``backtest.liquidation.Liquidator.execute``) and the compiled kernel
(``backtest.kernel.walk.take_over``, which ``numba.njit``-compiles this very function) call
:func:`takeover_settlement`; it is positional (numba compiles no keyword-only functions) and
imports nothing, so the kernel's compile-cache digest covers it by this file alone.
"""
from __future__ import annotations

__all__ = ["takeover_settlement"]


def takeover_settlement(pool_wallet: float, pnl_total: float, fee_due: float,
                        remainder_to_trader: bool) -> tuple[float, float, float, float]:
    """Split what is left of a pool closed at once between the trader and the insurance fund.

    Source: margin_rules.md §2.1 "What happens at liquidation": ``E = W + sum PnL_i`` is
    what is left at the fill; the clearance fee is ``min(fee_due, max(E, 0))``; policy
    ``insurance_fund`` (Binance): the trader loses ``W`` and the fund receives ``E`` (pays
    ``-E`` when the fill is worse than bankruptcy); policy ``trader``: the trader keeps
    ``E - fee`` when ``E >= 0``; ``bad_debt = max(0, -E)``.

    Parameters
    ----------
    pool_wallet : float
        ``W``: the isolated wallet of the position, or the cross wallet, margin asset.
    pnl_total : float
        Sum of the closed legs' PnL at their fill prices, margin asset.
    fee_due : float
        Clearance fee before the cap: rate x closed notional, margin asset.
    remainder_to_trader : bool
        True under ``liquidation_remainder="trader"``.

    Returns
    -------
    tuple of float
        ``(fee, trader_delta, fund_delta, bad_debt)``, margin asset: the fee charged, the
        change of the trader's wallet, the fund's change before any wallet-floor shortfall,
        and the bad debt (>= 0).
    """
    remaining = pool_wallet + pnl_total
    fee = min(fee_due, max(remaining, 0.0))
    if remainder_to_trader and remaining >= 0.0:
        trader_delta = remaining - fee - pool_wallet
        fund_delta = fee
    else:
        trader_delta = -max(pool_wallet, 0.0)
        fund_delta = remaining
    bad_debt = max(0.0, -remaining)
    return fee, trader_delta, fund_delta, bad_debt
