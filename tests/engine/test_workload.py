"""bench/run_workload.py: its output line, its configurations and the --generate path."""
from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pyarrow.parquet as pq
import pytest

from backtest.slippage import SqrtImpact

KEYS = {"total_s", "loop_s", "bars_per_s", "peak_rss_mib", "fills", "liquidation_ts",
        "final_equity", "n_liquidations", "funding_total", "fees_total"}


@pytest.fixture(scope="module")
def small_workload(generator: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 days of the workload (crash on day 10, squeeze on day 22) in the bench's file names."""
    (_, m1, legs1), (_, m2, legs2) = generator.PARAMS["events"]
    params = dict(generator.PARAMS, n_bars=30 * 1440, events=[(10, m1, legs1), (22, m2, legs2)])
    bars, funding, _ = generator.generate(params)
    out = tmp_path_factory.mktemp("workload")
    pq.write_table(bars, out / "btcusdt_perp_1m.parquet")
    pq.write_table(funding, out / "btcusdt_funding_8h.parquet")
    return out


def run_main(bench: ModuleType, capsys: pytest.CaptureFixture, *args: str) -> dict:
    bench.main(list(args))
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1, lines
    return json.loads(lines[0])


@pytest.mark.parametrize("crosscheck", [False, True], ids=["venue", "crosscheck"])
def test_both_paths_print_one_identical_line(bench: ModuleType, small_workload: Path,
                                             capsys: pytest.CaptureFixture,
                                             crosscheck: bool) -> None:
    args = ["--data", str(small_workload), "--path", "both"]
    args += ["--crosscheck"] if crosscheck else []
    out = run_main(bench, capsys, *args)
    assert out["bars"] == 30 * 1440
    assert out["config"] == ("crosscheck" if crosscheck else "venue")
    assert all(out["identical"].values()), out["identical"]
    event, array = out["event"], out["array"]
    for key in ("fills", "liquidation_ts", "final_equity", "n_liquidations", "funding_total",
                "fees_total"):
        assert event[key] == array[key], key
    assert array["n_liquidations"] == len(array["liquidation_ts"]) >= 1
    # only the scripted events liquidate: the crash on day 10, the squeeze on day 22
    assert {ts[:10] for ts in array["liquidation_ts"]} <= {"2023-01-11", "2023-01-23"}
    assert array["fees_total"] > 0 and array["funding_total"] != 0
    assert out["total_s"] > 0 and out["peak_rss_mib"] > 0


def test_rounding_option_rounds_fill_quantities_to_the_lot(bench: ModuleType,
                                                            small_workload: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    out = run_main(bench, capsys, "--data", str(small_workload), "--path", "both", "--rounding")
    assert all(out["identical"].values())
    config = bench.workload_config(False, rounding=True)
    assert config.rounding is True
    data = bench.load_data(small_workload)
    result = bench.run_path("array", data, config)[0]
    lots = result.fills.get_column("qty").to_numpy() / 0.001
    assert abs(lots - lots.round()).max() < 1e-6  # BTCUSDT lot 0.001


@pytest.mark.parametrize("path", ["event", "array"])
def test_single_path_line_has_the_issue_keys(bench: ModuleType, small_workload: Path,
                                             capsys: pytest.CaptureFixture, path: str) -> None:
    out = run_main(bench, capsys, "--data", str(small_workload), "--path", path, "--crosscheck")
    assert KEYS <= set(out)
    assert out["path"] == path
    assert out["bars_per_s"] == pytest.approx(out["bars"] / out["loop_s"], rel=0.01)
    assert out["total_s"] >= out["loop_s"] + out["load_s"]


def test_generate_writes_and_runs_the_reference_year(bench: ModuleType, shared_dir: Path,
                                                     tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    out = run_main(bench, capsys, "--data", str(tmp_path), "--generate", "--path", "array",
                   "--crosscheck")
    assert (tmp_path / "btcusdt_perp_1m.parquet").is_file()
    assert out["bars"] == 525_600
    # the crash day and the short squeeze of WORKLOAD.md liquidate the SMA strategy
    days = [ts[:10] for ts in out["liquidation_ts"]]
    assert "2023-06-30" in days and "2023-10-28" in days
    assert out["fills"] > 1_000


def test_missing_data_without_generate_explains_the_fix(bench: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"lacks btcusdt_perp_1m.parquet.*--generate"):
        bench.main(["--data", str(tmp_path)])


def test_forced_only_slippage(bench: ModuleType) -> None:
    model = bench.ForcedOnly(SqrtImpact())
    kwargs = dict(qty=3.0, price=30_000.0, bar_high=30_300.0, bar_low=29_700.0, bar_volume=40.0)
    assert model.impact(forced=False, **kwargs) == 0.0
    assert model.impact(forced=True, **kwargs) == SqrtImpact().impact(forced=True, **kwargs) > 0


def test_process_clock_counts_the_interpreter_start(bench: ModuleType) -> None:
    age = bench.process_age_s()
    assert age is None or age > 0
    assert bench.total_s() > 0
