"""Expectations for the rows of the order_lines feed loaded in this run."""

from typing import Any

SUITE = "order_lines"
CRITICAL = False
QUERY = """
select * exclude (source_sha256) from order_lines
where source_sha256 in (
    select sha256 from ingested_files where run_id = $run_id and status = 'loaded'
)
"""


def expectations(gx: Any) -> list[Any]:
    """The checks of this suite."""
    e = gx.expectations
    return [
        e.ExpectCompoundColumnsToBeUnique(column_list=["order_id", "line_no"]),
        e.ExpectColumnValuesToBeBetween(column="qty", min_value=1),
        e.ExpectColumnValuesToBeBetween(column="unit_price", min_value=0),
        e.ExpectColumnValuesToBeInSet(column="status", value_set=["open", "cancelled", "shipped"]),
    ]
