"""Strategy parameters: one declaration per parameter, checked generically, clear errors."""
from __future__ import annotations

import pytest

from backtest import Strategy, run_backtest
from backtest.errors import StrategyError
from backtest.strategy import BUILTIN_STRATEGIES, Param, ParameterConflict, load_strategy, strategy_class
from tests.engine.scenario import config, market

FLAT = (100.0, 100.0, 100.0, 100.0)


@pytest.mark.parametrize(("name", "params", "expected"), [
    ("hold", {"exposure": float("inf")}, "none or a finite number > 0"),
    ("hold", {"exposure": float("nan")}, "none or a finite number > 0"),
    ("hold", {"exposure": "inf"}, "none or a finite number > 0"),
    ("hold", {"exposure": 0}, "none or a finite number > 0"),
    ("hold", {"exposure": True}, "none or a finite number > 0"),
    ("hold", {"side": "sideways"}, "'long' or 'short'"),
    ("hold", {"side": ""}, "'long' or 'short'"),
    ("hold", {"reenter": "maybe"}, "true or false"),
    ("hold", {"reenter": 2}, "true or false"),
    ("sma_cross", {"fast": -5}, "a whole number >= 1"),
    ("sma_cross", {"fast": 0}, "a whole number >= 1"),
    ("sma_cross", {"fast": 5.5}, "a whole number >= 1"),
    ("sma_cross", {"fast": "abc"}, "a whole number >= 1"),
    ("sma_cross", {"fast": False}, "a whole number >= 1"),
    ("sma_cross", {"exposure": "nan"}, "a finite number > 0"),
    ("dca", {"step": 1.5}, "a finite number > 0 and < 1"),
    ("dca", {"max_adds": -1}, "a whole number >= 0"),
    ("funding_carry", {"rich_rate": float("inf")}, "a finite number"),
])
def test_bad_values_name_strategy_parameter_expected_found_and_fix(name, params, expected):
    (key, value), = params.items()
    with pytest.raises(StrategyError) as info:
        load_strategy(name, params)
    message = str(info.value)
    assert message.startswith(f"{name}: parameter {key!r}")
    assert f"expects {expected}, found {value!r}" in message
    assert f"pass e.g. {key}=" in message


def test_a_misspelt_choice_and_parameter_get_a_suggestion():
    with pytest.raises(StrategyError, match="found 'shrot' \\(did you mean 'short'\\?\\)"):
        load_strategy("hold", {"side": "shrot"})
    with pytest.raises(StrategyError, match="unknown parameter 'fsat' \\(did you mean 'fast'\\?\\)"):
        load_strategy("sma_cross", {"fsat": 10})
    with pytest.raises(StrategyError, match="unknown parameter 'name'"):
        load_strategy("hold", {"name": ""})


def test_sideways_no_longer_trades_short():
    with pytest.raises(StrategyError, match="side"):
        run_backtest(market([FLAT, FLAT, FLAT]), "hold", params={"side": "sideways"}, config=config())


def test_command_line_text_is_converted_by_the_declaration():
    hold = load_strategy("hold", {"exposure": "1.5", "reenter": "yes", "side": "short"})
    assert (hold.exposure, hold.reenter, hold.side) == (1.5, True, "short")
    assert load_strategy("hold", {"exposure": "none"}).exposure is None
    sma = load_strategy("sma_cross", {"fast": "20", "slow": 100.0})
    assert (sma.fast, sma.slow) == (20, 100) and isinstance(sma.slow, int)


@pytest.mark.parametrize(("name", "params", "text"), [
    ("sma_cross", {"fast": 200, "slow": 50}, "fast (200) must be shorter than slow (50)"),
    ("sma_cross", {"fast": 50, "slow": 50}, "fast (50) must be shorter than slow (50)"),
    ("funding_carry", {"rich_rate": -0.001, "cheap_rate": 0.001}, "must not exceed rich_rate"),
])
def test_meaningless_combinations_are_refused(name, params, text):
    with pytest.raises(ParameterConflict, match=text.replace("(", "\\(").replace(")", "\\)")):
        load_strategy(name, params)


def test_every_builtin_default_passes_its_own_declaration():
    for name in BUILTIN_STRATEGIES:
        cls = strategy_class(name)
        for key, spec in cls.param_specs().items():
            assert spec.check(name, spec.default) == spec.default, (name, key)
        assert cls().params() == cls.parameters()


def test_plain_class_attributes_are_checked_by_their_default_type():
    class Plain(Strategy):
        window = 10
        level = 0.5
        label_text = "x"
        verbose = False

        def on_bar(self, ctx) -> None:  # noqa: ANN001
            pass

    assert Plain(window="12", level=1).params() == {"window": 12, "level": 1.0, "label_text": "x", "verbose": False}
    for bad in ({"level": float("inf")}, {"window": True}, {"label_text": ""}, {"verbose": "perhaps"},
                {"level": "abc"}):
        with pytest.raises(StrategyError, match="Plain: parameter"):
            Plain(**bad)


def test_a_subclass_default_keeps_the_parent_rule():
    from strategies.sma_cross import SmaCross

    class Faster(SmaCross):
        fast = 5

    assert Faster().fast == 5 and isinstance(Faster.param_specs()["fast"], Param)
    with pytest.raises(StrategyError, match="expects a whole number >= 1"):
        Faster(fast=0)
