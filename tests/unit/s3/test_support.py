"""The operations table in the docs is the one the code generates."""

from __future__ import annotations

from pathlib import Path

from s3router_proxy.s3.operations import OPERATIONS
from s3router_proxy.s3.support import NOTES, operations_table

DOC = Path(__file__).resolve().parents[3] / "docs" / "s3-operations.md"


def test_docs_table_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == operations_table(), (
        "regenerate: python -m s3router_proxy.s3.support > docs/s3-operations.md"
    )


def test_every_operation_listed_and_notes_name_real_operations() -> None:
    table = operations_table()
    for name in OPERATIONS:
        assert f"| {name} |" in table
    assert set(NOTES) <= OPERATIONS
