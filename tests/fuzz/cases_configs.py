"""Malformed run files (``margincall run --config FILE``): every key of every table with values
of the wrong type or range, the issue's cases, and files that are not TOML at all."""
from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from tests.fuzz.harness import RUN, STRATEGY, Case

RUN_ARGV = ("run", "--config", "{file}", "--no-report", "--no-progress")
OUT = ("--out", "{tmp}/runs/config")

#: table -> key -> bad TOML values (the text after ``key =``)
NUMBER_BAD = ['"abc"', "-1", "inf", "nan", "[]", "{}", "true", "0"]
CHOICE_BAD = ['"abc"', '""', "5", "[]", "true"]
BOOL_BAD = ['"abc"', "5", "[]"]
BAD_VALUES: dict[str, dict[str, list[str]]] = {
    "data": {
        "exchange": ["5", '""', "[]", '"BTC[/]"'],
        "symbols": ["5", '""', "[]", "[5]", '["BTC[/]"]', "{}"],
        "timeframe": ["5", '""', '"abc"', "[]", '"0m"', '"-1h"'],
        "detail_timeframe": ["5", '""', '"abc"', '"1d"'],
        "start": ["5.5", '""', '"abc"', "[]", '"2024-13-45"'],
        "end": ['""', '"abc"', '"2020-01-01"'],
        "store": ["5", '""', "[]"],
    },
    "strategy": {
        "name": ["5", '""', '"nosuch"', "[]"],
        "params": ["5", '"abc"', "[]"],
    },
    "run": {
        "initial_balance": NUMBER_BAD,
        "leverage": [*NUMBER_BAD, "0.5", "1e-12", "1e9"],
        "liquidation_fee_rate": [v for v in NUMBER_BAD if v != "0"],
        "progress_every": NUMBER_BAD,
        "seed": [v for v in NUMBER_BAD if v != "0"],
        "margin_mode": CHOICE_BAD,
        "position_mode": CHOICE_BAD,
        "venue": CHOICE_BAD,
        "path_policy": CHOICE_BAD,
        "slippage": CHOICE_BAD,
        "liquidation_remainder": CHOICE_BAD,
        "liquidation_mode": CHOICE_BAD,
        "sizing_basis": CHOICE_BAD,
        "rounding": BOOL_BAD,
        "gating": BOOL_BAD,
        "allow_tiers_before_first": BOOL_BAD,
        "slippage_params": ["5", '"abc"', "{ nosuch = 1 }"],
        "fees": ['"abc"', "[1]", "[-1, 0.1]", "5", "[inf, 0.1]"],
        "tiers": ['"abc"', "5", "[]"],
        "name": ['""', '"../../x"', "5"],
    },
}
#: (case label, strategy, params TOML, subject, found)
PARAM_BAD = [
    ("hold-exposure-inf", "hold", "{ exposure = inf }", "exposure", "inf"),
    ("hold-exposure-nan", "hold", "{ exposure = nan }", "exposure", "nan"),
    ("hold-exposure-text", "hold", '{ exposure = "abc" }', "exposure", "abc"),
    ("hold-side-sideways", "hold", '{ side = "sideways" }', "side", "sideways"),
    ("hold-unknown", "hold", "{ sied = 1 }", "sied", None),
    ("sma-fast-negative", "sma_cross", "{ fast = -5, slow = 20 }", "fast", "-5"),
    ("sma-fast-text", "sma_cross", '{ fast = "abc", slow = 20 }', "fast", "abc"),
    ("sma-fast-inf", "sma_cross", "{ fast = inf, slow = 20 }", "fast", "inf"),
    ("sma-fast-zero", "sma_cross", "{ fast = 0, slow = 20 }", "fast", "0"),
    ("sma-fast-float", "sma_cross", "{ fast = 2.5, slow = 20 }", "fast", "2.5"),
    ("dca-unknown", "dca", "{ fsat = 1 }", "fsat", None),
]


def run_file(store: Path, *, data: dict[str, str] | None = None, strategy: dict[str, str] | None = None,
             run: dict[str, str] | None = None) -> str:
    """A run file whose tables hold the given raw TOML values over a valid default."""
    tables = {
        "data": {"exchange": '"binanceusdm"', "symbols": '["BTC/USDT:USDT"]', "timeframe": '"1h"',
                 "store": f'"{store.as_posix()}"', **(data or {})},
        "strategy": {"name": '"hold"', "params": '{ side = "long" }', **(strategy or {})},
        "run": {"leverage": "5", **(run or {})},
    }
    return "\n".join(f"[{table}]\n" + "\n".join(f"{k} = {v}" for k, v in values.items()) + "\n"
                     for table, values in tables.items())


def config_writer(build: Callable[[Path], str | bytes]) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / "run.toml"
        content = build(tmp / "store")
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path
    return make


def _label(value: str) -> str:
    return {'""': "empty", "[]": "list", "{}": "table"}.get(value, value.strip('"').replace(" ", "") or "empty")


def _found(value: str) -> str | None:
    text = value.strip('"')
    return text if text and value not in ("[]", "{}") and not value.startswith(("[", "{")) else None


def key_cases() -> list[Case]:
    cases = []
    for table, keys in BAD_VALUES.items():
        for key, values in keys.items():
            for value in values:
                area = STRATEGY if table == "strategy" else RUN
                argv = RUN_ARGV if key == "name" and table == "run" else (*RUN_ARGV, *OUT)
                cases.append(Case(f"config-{table}.{key}={_label(value)}", argv, key, area, found=_found(value),
                                  make=config_writer(lambda s, t=table, k=key, v=value: run_file(s, **{t: {k: v}}))))
    for label, name, params_, subject, found in PARAM_BAD:
        cases.append(Case(f"config-params-{label}", (*RUN_ARGV, *OUT), subject, STRATEGY, found=found,
                          make=config_writer(lambda s, n=name, p=params_: run_file(
                              s, strategy={"name": f'"{n}"', "params": p}))))
    return cases


def file_cases() -> list[Case]:
    argv = (*RUN_ARGV, *OUT)
    whole = {
        "binary": lambda s: random.Random(8).randbytes(2048),
        "utf16": lambda s: run_file(s).encode("utf-16"),
        "not-toml": lambda s: "[data\nsymbols = ",
        "unknown-table": lambda s: run_file(s) + "\n[strategyy]\nname = \"hold\"\n",
        "unknown-key": lambda s: run_file(s, data={"symbol": '"BTC/USDT:USDT"'}),
        "table-is-number": lambda s: "data = 5\n",
        "deeply-nested-arrays": lambda s: "x = " + "[" * 20_000 + "]" * 20_000 + "\n",
        "deeply-nested-tables": lambda s: "x = " + "{a = " * 5_000 + "1" + "}" * 5_000 + "\n",
        "duplicate-key": lambda s: run_file(s).replace('leverage = 5', 'leverage = 5\nleverage = 6'),
    }
    subjects = {"unknown-table": "strategyy", "unknown-key": "symbol", "table-is-number": "data",
                "duplicate-key": "leverage"}
    return [Case(f"config-file-{label}", argv, subjects.get(label, "run.toml"), RUN, make=config_writer(build))
            for label, build in whole.items()]


def cases() -> list[Case]:
    return [*key_cases(), *file_cases()]
