"""The run configuration's one schema: every key declared, every bad value a clear ConfigError."""
from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtest import RunConfig
from backtest.config import _FIELDS, _SCHEMA, RUN_FILE_SCHEMA, checked, default_run_name
from backtest.errors import ConfigError

SYMBOL = "BTC/USDT:USDT"

#: Anything TOML or a flag can produce, plus Python oddities.
toml_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-10**20, max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
    | st.dates() | st.datetimes(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6)


def test_every_key_is_declared_once_in_the_schema():
    # a key added to _FIELDS without a schema entry would escape validation
    assert list(_SCHEMA) == list(_FIELDS)


@pytest.mark.parametrize("key, value", [
    ("leverage", 0.5), ("leverage", 1e-12), ("leverage", 0), ("leverage", -3), ("leverage", math.inf),
    ("leverage", math.nan), ("leverage", "ten"), ("leverage", True), ("leverage", {SYMBOL: 0.9}),
    ("leverage", [10]), ("initial_balance", 0), ("initial_balance", math.inf), ("initial_balance", "1"),
    ("margin_mode", "crss"), ("margin_mode", {SYMBOL: 1}), ("position_mode", None),
    ("venue", "nope"), ("venue", ""), ("path_policy", 3), ("slippage", "linear"), ("slippage", 5),
    ("slippage_params", {"bps": math.nan}), ("slippage_params", "bps=5"), ("fees", [0.1, 0.2]),
    ("fees", [0.0002]), ("fees", {"maker": 0.0002}), ("fees", [math.nan, 0.0004]), ("tiers", "abc"),
    ("tiers", {SYMBOL: "abc"}), ("liquidation_fee_rate", 1.0), ("liquidation_fee_rate", -0.1),
    ("liquidation_mode", "partial"), ("sizing_basis", "margin"), ("rounding", "yes"), ("gating", 1),
    ("seed", -1), ("seed", 1.5), ("progress_every", 0), ("name", ""), ("name", "../x"),
    ("name", "/abs"), ("name", "a/b"), ("name", "nul\x00"), ("name", ".hidden"), ("name", 5),
])
def test_bad_values_name_key_expected_found_and_fix(key, value):
    with pytest.raises(ConfigError) as info:
        RunConfig(**{key: value})
    message = str(info.value)
    assert f"RunConfig.{key}: expected " in message
    assert ", found " in message
    assert "fix: e.g." in message or key == "tiers"


@pytest.mark.parametrize("value", [1, 1.0, 1.5, 125, {SYMBOL: 20, "default": 3}])
def test_leverage_from_one_is_accepted_as_floats(value):
    config = RunConfig(leverage=value)
    assert config.for_symbol("leverage", SYMBOL) >= 1
    assert all(isinstance(v, float) for v in (config.leverage.values() if isinstance(value, dict)
                                             else [config.leverage]))


def test_where_names_the_source():
    with pytest.raises(ConfigError, match=r"^run.toml \[run\] leverage: expected .* found 'ten'"):
        RunConfig.from_mapping({"leverage": "ten"}, where="run.toml [run]")
    with pytest.raises(ConfigError, match=r"^--leverage: expected .*fix: e.g. --leverage 10"):
        checked("leverage", math.inf, where="flags", subject="--leverage")
    with pytest.raises(ConfigError, match="expected a table of run settings"):
        RunConfig.from_mapping([("leverage", 3)], where="x")  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(list(_SCHEMA)), value=toml_values)
def test_any_value_is_accepted_normalised_or_refused_clearly(key, value):
    """Never another exception, never a silent non-finite number; accepted values round-trip."""
    try:
        config = RunConfig(**{key: value})
    except ConfigError as exc:
        assert str(exc).startswith(f"RunConfig.{key}: expected ") and ", found " in str(exc)
        return
    normalised = getattr(config, key)
    assert RunConfig(**{key: normalised}) == config  # validation is idempotent
    for number in _numbers(normalised):
        assert math.isfinite(number)
    if key == "leverage":
        assert all(v >= 1 for v in _numbers(normalised))
    if key == "name" and normalised is not None:
        assert "/" not in normalised and "\\" not in normalised and not normalised.startswith(".")


@settings(max_examples=200, deadline=None)
@given(table=st.sampled_from(["data", "strategy"]), data=st.data())
def test_run_file_keys_accept_or_refuse_clearly(table, data):
    key = data.draw(st.sampled_from(list(RUN_FILE_SCHEMA[table])))
    value = data.draw(toml_values)
    try:
        checked(key, value, where=f"run.toml [{table}]", check=RUN_FILE_SCHEMA[table][key])
    except ConfigError as exc:
        assert str(exc).startswith(f"run.toml [{table}] {key}: expected ")


@settings(max_examples=200, deadline=None)
@given(strategy=st.text(max_size=40))
def test_default_run_names_are_always_plain_folder_names(strategy):
    name = default_run_name(strategy)
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name)
    RunConfig(name=name)  # and the schema accepts what it makes


def _numbers(value):
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return []
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _numbers(v)]
    return []
