"""Expectations for the rows of the stock feed loaded in this run."""

from typing import Any

SUITE = "stock"
CRITICAL = False
QUERY = """
select * exclude (source_sha256) from stock
where source_sha256 in (
    select sha256 from ingested_files where run_id = $run_id and status = 'loaded'
)
"""


def expectations(gx: Any) -> list[Any]:
    """The checks of this suite."""
    e = gx.expectations
    return [
        e.ExpectCompoundColumnsToBeUnique(column_list=["location_id", "sku"]),
        e.ExpectColumnValuesToBeBetween(column="on_hand", min_value=0),
        e.ExpectColumnValuesToNotBeNull(column="as_of"),
    ]
