"""One exit code for one kind of mistake: a bad option value refused by a command (``fail()``),
a project error reaching the error boundary and a click usage error all exit
``EXIT_USER_ERROR`` (2); a command's own failed outcome (``data validate --strict`` finding
problems) exits 1. Real commands through ``run_cli``, as the console script runs them."""
from __future__ import annotations

from pathlib import Path

import pytest

from backtest.cli import EXIT_USER_ERROR, run_cli


@pytest.mark.parametrize(("args", "said"), [
    # a command refuses its own option value (backtest.cli.output.fail)
    (["data", "import", "x.csv", "--kind", "bogus"], "--kind 'bogus': expected one of"),
    (["data", "fetch", "--exchange", " ", "--symbol", "BTC/USDT:USDT"], "--exchange ' ': expected a value"),
    # a project error the fetch command reports (data_loaders' FetchError)
    (["data", "fetch", "--exchange", "binanceusdn", "--symbol", "BTC/USDT:USDT", "--since", "2020-03-01"],
     "did you mean binanceusdm"),
    # a project error raised past the command, printed by the error boundary
    (["compare", "--venues", "binance_usdm,bianance_coinm"], "did you mean 'binance_coinm'"),
    # click's own usage error
    (["run", "--no-such-option"], "No such option"),
])
def test_input_mistakes_exit_with_the_one_user_error_code(tmp_path: Path, capsys, monkeypatch, args, said):
    monkeypatch.chdir(tmp_path)  # nothing a refused command might write lands in the repo
    code = run_cli([*args, *(["--store", str(tmp_path / "store")] if args[0] in ("data", "compare") else [])])
    out = capsys.readouterr()
    text = " ".join((out.out + out.err).split())
    assert code == EXIT_USER_ERROR == 2, text
    assert said in text and "Traceback" not in text


def test_a_commands_failed_outcome_is_not_an_input_mistake(tmp_path: Path, capsys):
    # validate --strict on an empty store: nothing to check is not an error, so exit 0 ...
    assert run_cli(["data", "validate", "--store", str(tmp_path / "store"), "--strict"]) == 0
    # ... while rm of nothing stored is the command's own failed outcome: 1, not the mistake code
    code = run_cli(["data", "rm", "ohlcv", "--exchange", "binanceusdm", "--symbol", "BTC/USDT:USDT",
                    "--store", str(tmp_path / "store"), "--yes"])
    assert code == 1, capsys.readouterr()
