"""The rules behind the fuzz fixes, checked on valid neighbours of the fuzz inputs: the same
mechanism must refuse the bad input and still accept the good one."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.cases_files import KLINE_HEADER, csv_text, kline_rows
from tests.fuzz.harness import SYMBOL, run_in_process, tree_hashes

REPLAY = ("replay", "--crashes", "{tmp}/crashes.toml", "--crash", "synthetic-crash")


def _argv(sandbox: Path, *argv: str) -> list[str]:
    return [a.replace("{tmp}", str(sandbox)) for a in argv] + ["--store", str(sandbox / "store")]


def test_a_ladder_with_one_runnable_leverage_keeps_its_refused_rows_and_exits_0(sandbox: Path) -> None:
    outcome = run_in_process(_argv(sandbox, *REPLAY, "--leverage", "5,1e9"))
    assert outcome.code == 0, outcome.text
    assert "refused:" in outcome.stdout and "expected a leverage" in outcome.stdout


def test_a_ladder_the_engine_refuses_entirely_exits_2_naming_the_option(sandbox: Path) -> None:
    outcome = run_in_process(_argv(sandbox, *REPLAY, "--leverage", "1e9,2e9"))
    assert outcome.code == 2
    assert "--leverage '1e9,2e9': expected at least one leverage the venue allows" in outcome.text


def test_stress_with_every_leverage_above_the_cap_exits_2(sandbox: Path) -> None:
    base = ("stress", "--symbol", SYMBOL, "--start", "2024-03-01", "--end", "2024-03-06",
            "--scenario", "dip=shock:-0.1@2024-03-01T12:00Z")
    assert run_in_process(_argv(sandbox, *base, "--leverage", "500")).code == 2
    assert run_in_process(_argv(sandbox, *base, "--leverage", "5,500")).code == 0


def test_replay_symbol_names_the_symbols_of_the_selected_windows(sandbox: Path) -> None:
    outcome = run_in_process(_argv(sandbox, *REPLAY, "--leverage", "5", "--symbol", "ETH/USDT:USDT"))
    assert outcome.code == 2
    assert f"expected a symbol of the selected crash window(s), one of {SYMBOL}" in outcome.text


@pytest.mark.parametrize("flag", ["--start", "--end"])
def test_time_options_name_their_flag(sandbox: Path, flag: str) -> None:
    outcome = run_in_process(["data", "validate", "--store", str(sandbox / "store"), flag, "2024-13-45"])
    assert outcome.code == 2
    assert f"{flag}: time '2024-13-45': expected an ISO date" in outcome.text


def test_a_header_only_dump_is_refused_and_the_full_one_imported(sandbox: Path, template_store) -> None:
    _, before = template_store
    path = sandbox / "BTCUSDT-1h-2024-03-10.csv"
    path.write_text(csv_text(KLINE_HEADER, []))
    refused = run_in_process(["data", "import", str(path), "--store", str(sandbox / "store")])
    assert refused.code == 1
    assert "expected at least one data row, found only the header" in refused.text
    assert tree_hashes(sandbox / "store") == before
    path.write_text(csv_text(KLINE_HEADER, kline_rows()))
    assert run_in_process(["data", "import", str(path), "--store", str(sandbox / "store")]).code == 0


def test_sweep_out_is_checked_before_any_run(sandbox: Path) -> None:
    blocker = sandbox / "a-file"
    blocker.write_text("x")
    outcome = run_in_process(["sweep", "--store", str(sandbox / "store"), "--symbol", SYMBOL, "--timeframe", "1h",
                              "--strategy", "hold", "--leverage", "2", "--workers", "1",
                              "--out", str(blocker / "sweep")])
    assert outcome.code == 2
    assert "sweep runs" not in outcome.text  # refused before the progress bar of the runs
    assert "a-file is a file, not a folder" in outcome.text
