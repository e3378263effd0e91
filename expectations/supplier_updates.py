"""Expectations for the rows of the supplier_updates feed loaded in this run."""

from typing import Any

SUITE = "supplier_updates"
CRITICAL = False
QUERY = """
select * exclude (source_sha256) from supplier_updates
where source_sha256 in (
    select sha256 from ingested_files where run_id = $run_id and status = 'loaded'
)
"""


def expectations(gx: Any) -> list[Any]:
    """The checks of this suite."""
    e = gx.expectations
    return [
        e.ExpectCompoundColumnsToBeUnique(column_list=["po_id", "line_no", "reported_at"]),
        e.ExpectColumnValuesToNotBeNull(column="expected_at"),
        e.ExpectColumnValuesToBeBetween(column="qty_confirmed", min_value=0),
    ]
