"""A user's strategy: loaded from a file, and its exceptions told with its own lines only."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backtest import run_backtest
from backtest.errors import StrategyError, utc_text
from backtest.strategy import StrategyFailed, load_strategy
from tests.engine.scenario import HOUR, T0, config, market

FLAT = (100.0, 100.0, 100.0, 100.0)
USER = '''
from backtest import Strategy


def helper(x):
    return 1 / x


class Broken(Strategy):
    when = 2
    hook = "on_bar"

    def features(self, bars):
        if self.hook == "features":
            helper(0)
        return bars

    def on_start(self, ctx):
        if self.hook == "on_start":
            raise RuntimeError("no start")

    def on_bar(self, ctx):
        if ctx.bar_index == 0:
            ctx.target_exposure(1.0)
        if self.hook == "on_bar" and ctx.bar_index == self.when:
            helper(0)

    def on_fill(self, ctx, fill):
        if self.hook == "on_fill":
            {}["missing"]


class Fine(Strategy):
    def on_bar(self, ctx):
        pass


class NotAStrategy:
    pass
'''


@pytest.fixture
def user_file(tmp_path: Path) -> Path:
    path = tmp_path / "my_strategy.py"
    path.write_text(USER)
    return path


def failure(path: Path, **params) -> StrategyFailed:
    data = market([FLAT] * 6, timeframe="1h")
    with pytest.raises(StrategyFailed) as info:
        run_backtest(data, f"{path}:Broken", params=params, config=config())
    return info.value


def test_on_bar_failure_names_hook_bar_time_and_the_users_lines(user_file: Path):
    exc = failure(user_file, when=2)
    message = str(exc)
    assert message.startswith("strategy Broken: on_bar raised ZeroDivisionError: division by zero")
    assert f"at the close of bar 2 ({utc_text(T0 + 3 * HOUR)})" in message
    assert str(user_file) in message and "helper(0)" in message and "return 1 / x" in message
    assert "backtest/engine.py" not in message and "backtest/context.py" not in message
    assert isinstance(exc.original, ZeroDivisionError)


@pytest.mark.parametrize(("hook", "when", "kind"), [
    ("features", "before the first bar", "ZeroDivisionError"),
    ("on_start", "before the first bar", "RuntimeError"),
    ("on_fill", f"in bar 1 at {utc_text(T0 + HOUR)}", "KeyError"),
])
def test_every_hook_is_named(user_file: Path, hook: str, when: str, kind: str):
    message = str(failure(user_file, hook=hook))
    assert message.startswith(f"strategy Broken: {hook} raised {kind}")
    assert when in message and str(user_file) in message


def test_a_run_command_prints_the_failure_cleanly_and_exits_non_zero(user_file: Path, tmp_path: Path):
    from backtest.cli import build_app
    from data_loaders.store import MarketStore
    from data_loaders.synthetic import generate_perpetual, write_to_store

    root = tmp_path / "store"
    write_to_store(MarketStore(root), [generate_perpetual(days=2, crash_day=None, seed=5)], timeframes=("1h",))
    result = CliRunner().invoke(build_app(), ["run", "--strategy", f"{user_file}:Broken", "--store", str(root),
                                              "--timeframe", "1h", "--out", str(tmp_path / "out"),
                                              "--no-progress", "--no-report"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "on_bar raised ZeroDivisionError" in result.output and "return 1 / x" in result.output
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_files_and_classes_are_found_or_named(user_file: Path):
    assert type(load_strategy(f"{user_file}:Fine")).__name__ == "Fine"
    with pytest.raises(StrategyError, match="has no 'Brokn' \\(did you mean 'Broken'\\?\\).*Broken, Fine"):
        load_strategy(f"{user_file}:Brokn")
    with pytest.raises(StrategyError, match="expected a subclass of backtest.Strategy"):
        load_strategy(f"{user_file}:NotAStrategy")
    missing = user_file.with_name("my_strategie.py")
    with pytest.raises(StrategyError, match="no file .*my_strategie.py.*did you mean 'my_strategy.py'"):
        load_strategy(f"{missing}:Broken")
    with pytest.raises(StrategyError, match="name the class too.*strategies in the file: Broken, Fine"):
        load_strategy(str(user_file))


def test_a_file_that_does_not_import_is_named(tmp_path: Path):
    bad = tmp_path / "bad_syntax.py"
    bad.write_text("class X(:\n")
    with pytest.raises(StrategyError, match="syntax error in .*bad_syntax.py.* line 1"):
        load_strategy(f"{bad}:X")
    raising = tmp_path / "raising.py"
    raising.write_text(textwrap.dedent("""
        import math
        VALUE = math.sqrt(-1)
    """))
    with pytest.raises(StrategyError, match="importing .*raising.py.* raised ValueError") as info:
        load_strategy(f"{raising}:X")
    assert "VALUE = math.sqrt(-1)" in str(info.value)


def test_engine_errors_are_not_blamed_on_the_strategy():
    # an order too large for the wallet is an outcome (a rejection row), not an exception
    data = market([FLAT] * 3, timeframe="1h")
    result = run_backtest(data, "hold", params={"exposure": 500.0}, config=config())
    assert result.rejections.height >= 1 and result.fills.height == 0


@pytest.mark.parametrize("fraction", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_target_exposure_is_a_mistake_not_a_flat_order(fraction: float):
    from backtest import Strategy

    class Bad(Strategy):
        def on_bar(self, ctx) -> None:  # noqa: ANN001
            ctx.target_exposure(fraction)

    with pytest.raises(StrategyFailed, match=r"target_exposure: expected a finite fraction.*found (nan|inf|-inf)"):
        run_backtest(market([FLAT] * 3, timeframe="1h"), Bad, config=config())


def test_a_failing_signal_is_named_as_the_signal():
    import numpy as np

    from backtest import Strategy

    class BadSignal(Strategy):
        def signal(self, inputs):  # noqa: ANN001, ANN201
            return np.log(inputs.close) / undefined_name  # noqa: F821

    with pytest.raises(StrategyFailed, match="strategy BadSignal: signal raised NameError") as info:
        run_backtest(market([FLAT] * 3, timeframe="1h"), BadSignal, config=config())
    assert "undefined_name" in str(info.value) and "backtest/strategy.py" not in str(info.value)
