"""Malformed command-line arguments: the issue's cases plus every numeric and text option of
every command crossed with the classic bad values."""
from __future__ import annotations

from tests.fuzz.harness import RISK, RUN, STORE, STRATEGY, SYMBOL, Case

#: A valid base command line per command; each case replaces or appends one option.
BASE: dict[str, tuple[tuple[str, ...], str]] = {
    "run": (("run", "--store", "{store}", "--timeframe", "1h", "--no-report", "--no-progress",
             "--out", "{tmp}/runs/fuzz"), RUN),
    "mc": (("mc", "--store", "{store}", "--paths", "200", "--leverage", "5,10", "--horizon", "1,4"), RISK),
    "survive": (("survive", "--store", "{store}", "--paths", "200", "--horizon", "4"), RISK),
    "stress": (("stress", "--store", "{store}", "--symbol", SYMBOL, "--start", "2024-03-01",
                "--end", "2024-03-06", "--scenario", "dip=shock:-0.1@2024-03-01T12:00Z", "--leverage", "5"), RISK),
    "replay": (("replay", "--store", "{store}", "--crashes", "{tmp}/crashes.toml", "--crash", "synthetic-crash",
                "--leverage", "5"), RISK),
    "sweep": (("sweep", "--store", "{store}", "--symbol", SYMBOL, "--timeframe", "1h", "--strategy", "sma_cross",
               "--leverage", "2", "--grid", "fast=5", "--grid", "slow=20", "--workers", "1",
               "--out", "{tmp}/sweep"), STRATEGY),
    "data validate": (("data", "validate", "--store", "{store}"), STORE),
    "data query": (("data", "query", "select count(*) from ohlcv", "--store", "{store}"), STORE),
    "data ls": (("data", "ls", "--store", "{store}"), STORE),
}

NUMBERS = {"nan": "nan", "inf": "inf", "-inf": "-inf", "neg": "-1", "zero": "0", "huge": "1e308",
           "empty": "", "abc": "abc", "unicode": "∞"}

#: (command, option, values that are legitimately accepted and so are not bad input)
NUMERIC_OPTIONS: list[tuple[str, str, set[str]]] = [
    ("run", "--leverage", set()),
    ("run", "--balance", {"huge"}),
    ("mc", "--leverage", set()),
    ("mc", "--horizon", set()),
    ("mc", "--margin", {"huge"}),
    ("mc", "--paths", set()),
    ("mc", "--seed", {"zero"}),
    ("mc", "--workers", set()),
    ("survive", "--target", set()),
    ("survive", "--horizon", set()),
    ("survive", "--margin", {"huge"}),
    ("survive", "--paths", set()),
    ("survive", "--seed", {"zero"}),
    ("stress", "--leverage", set()),
    ("replay", "--leverage", set()),
    ("sweep", "--leverage", set()),
    ("sweep", "--workers", {"zero"}),  # 0 = every core, as documented
    ("data query", "--max-rows", {"zero"}),
]

TEXTS = {"empty": "", "abc": "abc", "markup": "BTC[/]", "unicode": "₿€∞"}

#: (command, option, values accepted as they are)
TEXT_OPTIONS: list[tuple[str, str, set[str]]] = [
    ("run", "--timeframe", set()),
    ("run", "--symbol", set()),
    ("run", "--strategy", set()),
    ("run", "--margin-mode", set()),
    ("run", "--path-policy", set()),
    ("run", "--slippage", set()),
    ("run", "--venue", set()),
    ("run", "--exchange", set()),
    ("run", "--start", set()),
    ("run", "--param", set()),
    ("mc", "--symbol", set()),
    ("mc", "--timeframe", set()),
    ("mc", "--price", set()),
    ("mc", "--model", set()),
    ("mc", "--side", set()),
    ("mc", "--start", set()),
    ("survive", "--criterion", set()),
    ("survive", "--side", set()),
    ("survive", "--model", set()),
    ("survive", "--price", set()),
    ("stress", "--timeframe", set()),
    ("stress", "--scenario", set()),
    ("stress", "--strategy", set()),
    ("stress", "--slippage", set()),
    ("replay", "--crash", set()),
    ("replay", "--strategy", set()),
    ("replay", "--symbol", set()),
    ("sweep", "--timeframe", set()),
    ("sweep", "--grid", set()),
    ("sweep", "--runner", set()),
    ("sweep", "--strategy", set()),
    ("data validate", "--timeframe", set()),
    ("data validate", "--start", set()),
    ("data ls", "--dataset", set()),
]


def _with(command: str, option: str, value: str) -> tuple[str, ...]:
    """The base command line of ``command`` with ``option`` set to ``value`` (replaced or added)."""
    base, _ = BASE[command]
    argv = list(base)
    if option in argv and option not in ("--grid", "--scenario", "--param"):
        argv[argv.index(option) + 1] = value
    elif option in ("--grid", "--scenario") and option in argv:
        # replace every occurrence by the single bad one
        kept = []
        skip = False
        for arg in argv:
            if skip:
                skip = False
                continue
            if arg == option:
                skip = True
                continue
            kept.append(arg)
        argv = [*kept, option, value]
    else:
        argv += [option, value]
    return tuple(argv)


def _id(command: str, option: str, label: str) -> str:
    return f"{command.replace(' ', '-')}{option}={label}"


def systematic() -> list[Case]:
    """Every numeric option x every bad number, every text option x every bad text."""
    cases = []
    for command, option, accepted in NUMERIC_OPTIONS:
        for label, value in NUMBERS.items():
            if label not in accepted:
                cases.append(Case(_id(command, option, label), _with(command, option, value), option,
                                  BASE[command][1], found=value or None))
    for command, option, accepted in TEXT_OPTIONS:
        for label, value in TEXTS.items():
            if label not in accepted:
                cases.append(Case(_id(command, option, label), _with(command, option, value), option,
                                  BASE[command][1], found=value or None))
    return cases


def from_the_issue() -> list[Case]:
    """The argument cases the issue lists by name."""
    def case(case_id: str, command: str, option: str, value: str, *, subject: str | None = None,
             found: str | None = None, area: str | None = None) -> Case:
        return Case(case_id, _with(command, option, value), subject or option, area or BASE[command][1],
                    found=found if found is not None else value)

    return [
        case("issue-mc-leverage-inf", "mc", "--leverage", "inf"),
        case("issue-mc-horizon-nan", "mc", "--horizon", "nan"),
        case("issue-mc-price-bid", "mc", "--price", "bid"),
        case("issue-sweep-workers-neg", "sweep", "--workers", "-1"),
        case("issue-sweep-grid-fast-abc", "sweep", "--grid", "fast=abc", subject="fast", found="abc"),
        case("issue-sweep-grid-fast-neg", "sweep", "--grid", "fast=-5", subject="fast", found="-5"),
        case("issue-sweep-grid-typo", "sweep", "--grid", "fsat=10", subject="fsat", found="fsat"),
        Case("issue-run-param-fast-neg", (*_with("run", "--param", "fast=-5"), "--strategy", "sma_cross"), "fast",
             STRATEGY, found="-5"),
        case("issue-run-param-side-sideways", "run", "--param", "side=sideways", subject="side", found="sideways",
             area=STRATEGY),
        case("issue-run-param-exposure-inf", "run", "--param", "exposure=inf", subject="exposure", found="inf",
             area=STRATEGY),
        case("issue-run-param-exposure-nan", "run", "--param", "exposure=nan", subject="exposure", found="nan",
             area=STRATEGY),
        case("issue-run-leverage-1e9", "run", "--leverage", "1e9"),
        case("issue-run-leverage-half", "run", "--leverage", "0.5"),
        case("issue-run-leverage-tiny", "run", "--leverage", "1e-12"),
        case("issue-replay-leverage-1e9", "replay", "--leverage", "1e9"),
        case("issue-stress-shock-inf", "stress", "--scenario", "shock:inf@2024-03-01T12:00Z",
             subject="shock", found="inf"),
        case("issue-stress-vol-inf", "stress", "--scenario", "vol:inf", subject="vol", found="inf"),
        case("issue-stress-funding-nan", "stress", "--scenario", "funding:nan@2024-03-01..2024-03-02",
             subject="funding", found="nan"),
        case("issue-stress-drought-inf", "stress", "--scenario", "drought:inf", subject="drought", found="inf"),
        case("issue-stress-reversed-window", "stress", "--scenario", "vol:2@2024-03-02..2024-03-01",
             subject="vol", found="2024-03-02"),
        case("issue-run-timeframe-empty", "run", "--timeframe", ""),
        case("issue-mc-symbol-markup", "mc", "--symbol", "BTC[/]"),
        case("issue-mc-timeframe-empty", "mc", "--timeframe", ""),
        case("issue-run-symbol-runn", "run", "--symbol", "[runn]"),
        case("issue-run-symbol-double-bracket", "run", "--symbol", "[[crash]]"),
        case("issue-replay-crash-runn", "replay", "--crash", "[runn]"),
        case("issue-run-out-unwritable", "run", "--out", "{tmp}/crashes.toml/run", subject="--out",
             found="crashes.toml"),
        case("issue-sweep-out-unwritable", "sweep", "--out", "{tmp}/crashes.toml/sweep", subject="--out",
             found="crashes.toml"),
        case("issue-stress-leverage-above-cap", "stress", "--leverage", "500"),
    ]


def cases() -> list[Case]:
    return [*from_the_issue(), *systematic()]
