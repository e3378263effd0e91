"""Expectations for the rows of the purchase_orders feed loaded in this run."""

from typing import Any

SUITE = "purchase_orders"
CRITICAL = False
QUERY = """
select * exclude (source_sha256) from purchase_orders
where source_sha256 in (
    select sha256 from ingested_files where run_id = $run_id and status = 'loaded'
)
"""


def expectations(gx: Any) -> list[Any]:
    """The checks of this suite."""
    e = gx.expectations
    return [
        e.ExpectCompoundColumnsToBeUnique(column_list=["po_id", "line_no"]),
        e.ExpectColumnValuesToBeBetween(column="qty", min_value=1),
        e.ExpectColumnValuesToBeInSet(column="status", value_set=["open", "received", "cancelled"]),
        e.ExpectColumnValuesToNotBeNull(column="expected_at"),
    ]
