"""Fuzz: a valid CSV in another encoding (BOM, UTF-16, Latin-1 with CRLF) is either imported
exactly as its clean UTF-8 twin would be, or refused with a clear error and an unchanged store.
Never a traceback, never different rows."""
from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from tests.fuzz.cases_files import ENCODED_IMPORTS, csv_text, encodings
from tests.fuzz.harness import SYMBOL, assert_clear_error, run_in_process, tree_hashes

CASES = [pytest.param(label, name, header, rows, flags, read, encoding, id=f"encoding-{label}-{encoding}")
         for label, name, header, rows, flags, read in ENCODED_IMPORTS
         for encoding in encodings(header, rows)]


def _stored(root: Path, read: dict[str, str]) -> pl.DataFrame:
    from data_loaders.store import MarketStore

    return MarketStore(root).read(exchange="binanceusdm", symbol=SYMBOL, **read)


@pytest.mark.parametrize(("label", "name", "header", "rows", "flags", "read", "encoding"), CASES)
def test_an_encoded_csv_is_read_exactly_or_refused_clearly(label, name, header, rows, flags, read, encoding,
                                                           sandbox: Path, template_store) -> None:
    template, before = template_store
    encoded = sandbox / "in" / name
    encoded.parent.mkdir()
    encoded.write_bytes(encodings(header, rows)[encoding])
    outcome = run_in_process(["data", "import", str(encoded), "--store", str(sandbox / "store"), *flags])
    if outcome.code != 0:
        assert_clear_error(outcome, subject=name)
        assert tree_hashes(sandbox / "store") == before, "a refused import changed the store"
        return
    assert "internal error" not in outcome.text
    clean_root = sandbox / "clean-store"
    shutil.copytree(template, clean_root)
    clean = sandbox / "clean" / name
    clean.parent.mkdir()
    clean.write_text(csv_text(header, rows), encoding="utf-8")
    reference = run_in_process(["data", "import", str(clean), "--store", str(clean_root), *flags])
    assert reference.code == 0, reference.text
    assert _stored(sandbox / "store", read).equals(_stored(clean_root, read))
