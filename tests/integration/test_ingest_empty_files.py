"""An empty feed file is recorded as loaded with 0 rows (or rejected where the contract says)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from backorders import pipeline
from backorders.adapters.ingest import EMPTY_FILE
from backorders.report import summary_markdown, summary_text
from backorders.settings import Settings
from tests.integration.conftest import AS_OF, IngestFn, csv_text, result_for, rows, write

pytestmark = pytest.mark.integration


def _empty_parquet(landing: Path) -> Path:
    path = landing / "orders" / "no_rows.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    schema = pa.schema(
        [
            ("order_id", pa.string()),
            ("customer_id", pa.string()),
            ("placed_at", pa.timestamp("us", tz="UTC")),
            ("status", pa.string()),
            ("updated_at", pa.timestamp("us", tz="UTC")),
        ]
    )
    pq.write_table(schema.empty_table(), path)
    return path


@pytest.mark.parametrize("kind", ["header_only.csv", "zero_bytes.jsonl", "blank.jsonl", "parquet"])
def test_empty_feed_file_is_loaded_with_zero_rows_and_audited(
    kind: str,
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    base: dict[str, Path],
    ingest: IngestFn,
) -> None:
    # Arrange: an orders file that arrived and holds no record
    if kind == "parquet":
        path = _empty_parquet(landing)
    else:
        body = {"header_only.csv": csv_text("orders"), "zero_bytes.jsonl": "", "blank.jsonl": "\n"}
        path = write(landing, "orders", kind, body[kind])
    orders_before = rows(con, "select * from orders order by all")

    # Act
    r = result_for(ingest(), path)

    # Assert: recorded, audited, nothing changed
    assert (r.status, r.rows_loaded, r.rows_quarantined, r.reason) == ("loaded", 0, 0, EMPTY_FILE)
    assert rows(
        con,
        "select status, rows_loaded, rows_quarantined, reason from ingested_files where path = $p",
        {"p": str(path)},
    ) == [("loaded", 0, 0, EMPTY_FILE)]
    assert rows(
        con,
        "select event, details->>'rows_loaded' from audit_log a join ingested_files f "
        "on f.sha256 = a.entity_id where f.path = $p",
        {"p": str(path)},
    ) == [("file_loaded", "0")]
    assert rows(con, "select * from orders order by all") == orders_before


@pytest.mark.parametrize("body", [csv_text("stock"), ""], ids=["header_only.csv", "empty.jsonl"])
def test_empty_stock_snapshot_is_still_rejected_whole(
    body: str,
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    base: dict[str, Path],
    ingest: IngestFn,
) -> None:
    # Arrange
    name = "header_only.csv" if body else "empty.jsonl"
    path = write(landing, "stock", name, body)

    # Act
    r = result_for(ingest(), path)

    # Assert
    assert r.status == "rejected"
    assert r.reason is not None and "empty stock snapshot" in r.reason


def test_empty_file_is_named_in_the_run_summary(tmp_path: Path, settings: Settings) -> None:
    # Arrange: a landing zone whose only orders file is a header
    landing = tmp_path / "landing"
    path = write(landing, "orders", "header_only.csv", csv_text("orders"))
    s = settings.model_copy(update={"landing": landing, "db": tmp_path / "b.duckdb"})

    # Act
    ingested = pipeline.ingest_stage(s, "run-1", AS_OF, lambda _: None)
    summary = {"run_id": "run-1", "status": "succeeded", "ingest": ingested}

    # Assert
    assert ingested["files"] == {"loaded": 1}
    assert ingested["empty"] == [str(path)]
    assert f"empty file (loaded, 0 rows): {path}" in summary_text(summary)
    assert str(path) in summary_markdown(summary)
