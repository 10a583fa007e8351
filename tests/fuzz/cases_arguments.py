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


def import_option_cases() -> list[Case]:
    """``data import`` of a valid file with one bad option: nothing may be stored."""
    from tests.fuzz.cases_files import GENERIC_FLAGS, KLINE_HEADER, csv_text, generic_frame, kline_rows, writer

    klines = writer("BTCUSDT-1h-2024-03-10.csv", csv_text(KLINE_HEADER, kline_rows()))
    generic = writer("generic.csv", lambda p: generic_frame().write_csv(p))
    base = ("data", "import", "{file}", "--store", "{store}")
    cases = []
    for option, values in {"--kind": TEXTS, "--timeframe": {**TEXTS, "zero": "0m", "negative": "-1h"},
                           "--price-type": TEXTS, "--symbol": TEXTS, "--exchange": {**TEXTS, "other": "kraken"}}.items():
        for label, value in values.items():
            cases.append(Case(f"import-klines{option}={label}", (*base, option, value), option, STORE,
                              found=value or None, make=klines))
    for option, values in {"--ts-unit": {**TEXTS, "wrong-unit": "s"}, "--map": {"abc": "abc", "empty-source": "ts=",
                                                                              "unknown-column": "ts=nosuch"},
                           "--dataset": TEXTS}.items():
        for label, value in values.items():
            flags = [f for f in GENERIC_FLAGS]
            if option in flags:
                flags[flags.index(option) + 1] = value
            else:
                flags += [option, value]
            subject = {"--map": "ts", "--ts-unit": "--ts-unit"}.get(option, option)
            cases.append(Case(f"import-generic{option}={label}", (*base, *flags), subject, STORE,
                              found=value.partition("=")[2] or None if option == "--map" else value or None,
                              make=generic))
    return cases


def query_cases() -> list[Case]:
    """``data query`` must not write or delete files (the catalog is opened read-only)."""
    base = ("data", "query")
    sql = {
        "copy-over-store": "COPY (SELECT 1 AS x) TO '{store}/ohlcv/evil.csv'",
        "copy-overwrite": "COPY (SELECT * FROM funding LIMIT 0) TO '{store}/funding' (FORMAT parquet, "
                          "PARTITION_BY (symbol), OVERWRITE_OR_IGNORE)",
        "create-table": "CREATE TABLE t AS SELECT 1",
        "attach": "ATTACH '{store}/evil.duckdb' AS evil",
        "not-sql": "abc",
        "empty": "",
        "markup": "select '[runn]' from nosuch[/]",
    }
    return [Case(f"data-query-{label}", (*base, text, "--store", "{store}"), "query", STORE) for label, text in sql.items()]


def report_cases() -> list[Case]:
    """``report`` of folders that are not (complete) run folders."""
    def folder(files: dict[str, bytes]):
        def make(tmp):
            run = tmp / "runs" / "broken"
            run.mkdir(parents=True)
            for name, data in files.items():
                (run / name).write_bytes(data)
            return run
        return make

    junk = bytes(range(256)) * 8
    cases = [
        Case("report-empty-folder", ("report", "{file}"), "broken", RUN, make=folder({})),
        Case("report-manifest-garbage", ("report", "{file}"), "manifest.json", RUN,
             make=folder({"manifest.json": junk, "equity.parquet": junk})),
        Case("report-manifest-empty-object", ("report", "{file}"), "equity.parquet", RUN,
             make=folder({"manifest.json": b"{}", "equity.parquet": b""})),
        Case("report-truncated-equity", ("report", "{file}"), "equity.parquet", RUN,
             make=folder({"manifest.json": b'{"config": {}, "summary": {}}', "equity.parquet": b"PAR1" + junk[:100]})),
        Case("report-manifest-deeply-nested", ("report", "{file}"), "manifest.json", RUN,
             make=folder({"manifest.json": b"[" * 100_000 + b"]" * 100_000, "equity.parquet": junk})),
        Case("report-plotlyjs-abc", ("report", "{tmp}", "--plotlyjs", "abc"), "--plotlyjs", RUN, found="abc"),
        Case("report-out-unwritable", ("report", "{file}", "--out", "{tmp}/crashes.toml/r.html"), "--out", RUN,
             make=folder({})),
    ]
    return cases


def cases() -> list[Case]:
    return [*from_the_issue(), *systematic(), *import_option_cases(), *query_cases(), *report_cases()]
