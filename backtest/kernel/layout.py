"""Where the kernel keeps its state: named slots of two arrays, and its output tables.

The compiled functions share one run's state through a float array ``S`` (the position, the
wallet, the journal's running totals, the gate levels) and an int array ``C`` (table row
counts, order ids, times); the names below are their slots. ``S`` and ``C`` are also what the
kernel returns (``totals`` and ``counts`` of :class:`backtest.kernel.KernelRun`).

The output tables are one tuple ``out`` of arrays (``O_*`` its positions), each table an int
part and a float part; the columns are listed with each.
"""
from __future__ import annotations

__all__ = ["FLOAT_SLOTS", "INT_SLOTS", "OUT_TABLES", "PARAMS"]

# ---- S: float state ---------------------------------------------------------------------
WALLET, QTY, ENTRY, MARGIN, POS_LEV, LP, BP = 0, 1, 2, 3, 4, 5, 6
# the open round trip (Position.trade_*)
T_QTY, T_ENTRY_NOTIONAL, T_EXIT_QTY, T_EXIT_NOTIONAL, T_PNL, T_FEES, T_FUNDING = 7, 8, 9, 10, 11, 12, 13
# the account and the journal's running totals
BAD_DEBT, FEES, SLIPPAGE, FUNDING_PAID, FUNDING_RECEIVED, LIQ_PENALTY, CLEARANCE_FEES = 14, 15, 16, 17, 18, 19, 20
TRIG_RATIO, FUND_OWN = 21, 22
# the gate levels (MarginModel.mark_below / mark_above) and the pending target's fraction
BELOW, ABOVE, PEND_TARGET = 23, 24, 25
FLOAT_SLOTS = 26

# ---- C: int state -----------------------------------------------------------------------
STATUS, N_FILLS, N_ORDERS, N_TRADES, N_FUNDING, N_LIQS, N_SNAPS, N_FUND = 0, 1, 2, 3, 4, 5, 6, 7
NEXT_ID, TRIG_TS, T_OPEN_TS, PEND_ROW, T_SIDE = 8, 9, 10, 11, 12
INT_SLOTS = 13

# ---- params: the configuration -------------------------------------------------------------
P_INITIAL, P_LEVERAGE, P_TAKER, P_CLEARANCE, P_IMPACT, P_FORCED = 0, 1, 2, 3, 4, 5
P_INTERVAL, P_LATENCY, P_SIZING_EQUITY, P_REMAINDER_TRADER, P_MAX_NOTIONAL = 6, 7, 8, 9, 10
PARAMS = 11

# ---- out: the tables ----------------------------------------------------------------------
# fills: ts, order_id, side, liquidity (0 taker, 1 liquidation), reason (0 strategy, 1 liquidation)
#   fills_f: qty, price, reference_price, slippage_bps, slippage_cost, fee, realized_pnl, qty_after
# orders: order_id, ts_created, ts_done (-1: None), side, type (0 market, 1 liquidation),
#   status (0 filled, 1 cancelled, 2 open); orders_f: qty
# trades: side, entry_ts, exit_ts, reason (0 signal, 1 liquidation)
#   trades_f: qty, entry_price, exit_price, pnl, fees, funding
# funding: ts; funding_f: rate, mark_price, position_qty, payment
# liqs: ts, trigger_ts, side (+1 long), tier
#   liqs_f: qty, entry, mark, last, liquidation_price, bankruptcy_price, fill_price, reference,
#   slippage_bps, slippage_cost, fee, margin_lost, fund_delta, bad_debt, equity_before,
#   equity_after, maint_margin_rate
# snaps: bar; snaps_f: wallet, qty, entry, margin, leverage, liquidation_price, bankruptcy_price
# fund: ts, cause (0 liquidation, 1 bad_debt); fund_f: the run's own contribution after it
OUT_TABLES = ("fills", "fills_f", "orders", "orders_f", "trades", "trades_f", "funding", "funding_f", "liqs",
              "liqs_f", "snaps", "snaps_f", "fund", "fund_f")
(O_FILLS, O_FILLS_F, O_ORDERS, O_ORDERS_F, O_TRADES, O_TRADES_F, O_FUNDING, O_FUNDING_F, O_LIQS, O_LIQS_F,
 O_SNAPS, O_SNAPS_F, O_FUND, O_FUND_F) = range(14)

# ---- statuses --------------------------------------------------------------------------------
#: The run is complete.
DONE = 0
#: An output table is full (the caller retries with larger tables).
FULL = 1
#: The run left the kernel's scope (the caller runs the Python path).
BAIL = 2
