"""Expectations for the rows of the shipments feed loaded in this run."""

from typing import Any

SUITE = "shipments"
CRITICAL = False
QUERY = """
select * exclude (source_sha256) from shipments
where source_sha256 in (
    select sha256 from ingested_files where run_id = $run_id and status = 'loaded'
)
"""


def expectations(gx: Any) -> list[Any]:
    """The checks of this suite."""
    e = gx.expectations
    return [
        e.ExpectCompoundColumnsToBeUnique(column_list=["shipment_id", "order_id", "line_no"]),
        e.ExpectColumnValuesToBeBetween(column="qty", min_value=1),
        e.ExpectColumnValuesToNotBeNull(column="shipped_at"),
    ]
