"""``margincall demo``: the embedded end-to-end job that needs no network.

It generates the deterministic synthetic BTC and ETH perpetuals (a crash day where last and
mark price diverge), stores them in a Parquet store under the output folder, replays a
leverage ladder of the ``hold`` strategy and two active strategies through the crash, writes a
report per run and one comparison report of the ladder.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

LADDER = (2.0, 5.0, 10.0, 20.0, 50.0)
SYMBOL = "BTC/USDT:USDT"


def register(app: typer.Typer) -> None:
    """Attach the ``demo`` command to the root application."""
    app.command("demo")(demo)


def demo(
    out: Annotated[Path, typer.Option(help="Folder for the store, the runs and the reports.")] = Path("runs/demo"),
    seed: Annotated[int, typer.Option(help="Seed of the synthetic market.")] = 7,
) -> None:
    """Run the built-in strategies at 2-50x through a synthetic crash and write the reports."""
    from backtest.cli.output import console as output_console
    from backtest.cli.output import styled
    from rich.table import Table

    console = output_console()
    summaries = run_demo(out=out, seed=seed, log=console.print)

    table = Table(title="Through the synthetic crash (isolated margin)")
    table.add_column("run", no_wrap=True)
    for column in ("return", "max DD", "liqs", "first liquidation (UTC)", "bad debt"):
        table.add_column(column, justify="right", no_wrap=True)
    for name, summary in summaries:
        first = summary.get("first_liquidation_ts")
        table.add_row(
            name,
            f"{summary['total_return']:+.1%}",
            f"{summary['max_drawdown']:.1%}",
            str(summary["n_liquidations"]),
            first[:16].replace("T", " ") if first else "-",
            f"{summary['bad_debt']:.2f}",
        )
    console.print(table)
    console.print("Comparison report:", styled(str((out / "comparison.html").resolve()), "bold"))


def run_demo(*, out: Path, seed: int = 7, log=print) -> list[tuple[str, dict]]:
    """Generate the demo market, run the ladder and the active strategies, write all reports.

    Parameters
    ----------
    out
        Output folder; ``out/store`` holds the generated market data, ``out/<run>`` each run.
    seed
        Seed of the synthetic market; the same seed gives byte-identical tables.
    log
        Callable used for progress lines.

    Returns
    -------
    list of (run name, summary dict) in run order.
    """
    from backtest import MarketData, RunConfig, run_backtest
    from data_loaders.store import MarketStore
    from data_loaders.synthetic import demo_dataset, write_to_store
    from reports import write_comparison, write_report

    out.mkdir(parents=True, exist_ok=True)
    store = MarketStore(out / "store")
    markets = demo_dataset(seed=seed)
    write_to_store(store, markets, source=f"synthetic:seed={seed}")
    log(f"Generated the synthetic market (seed {seed}) into {out / 'store'}")

    data = MarketData.from_store(
        store,
        exchange="binanceusdm",
        symbols=[SYMBOL],
        timeframe="1m",
        start=None,
        end=None,
    )

    plans: list[tuple[str, str, dict, float]] = [
        (f"hold-long-{lev:g}x", "hold", {"side": "long"}, lev) for lev in LADDER
    ]
    plans += [
        ("sma_cross-10x", "sma_cross", {"fast": 50, "slow": 200}, 10.0),
        ("dca-5x", "dca", {}, 5.0),
    ]
    summaries: list[tuple[str, dict]] = []
    ladder_dirs: list[Path] = []
    for name, strategy, params, leverage in plans:
        config = RunConfig(initial_balance=10_000.0, leverage=leverage, margin_mode="isolated", seed=seed)
        result = run_backtest(data, strategy=strategy, params=params, config=config)
        run_dir = result.write(out / name, overwrite=True)  # the demo owns its folder: a rerun replaces its runs
        write_report(run_dir)
        summaries.append((name, result.summary))
        if strategy == "hold":
            ladder_dirs.append(run_dir)
        log(f"{name}: {result.summary['n_liquidations']} liquidation(s) -> {run_dir / 'report.html'}")
    write_comparison(ladder_dirs, out=out / "comparison.html")
    return summaries
