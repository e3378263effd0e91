"""Expectations for the rows of the products feed loaded in this run."""

from typing import Any

SUITE = "products"
CRITICAL = False
QUERY = """
select * exclude (source_sha256) from products
where source_sha256 in (
    select sha256 from ingested_files where run_id = $run_id and status = 'loaded'
)
"""


def expectations(gx: Any) -> list[Any]:
    """The checks of this suite."""
    e = gx.expectations
    return [
        e.ExpectColumnValuesToBeUnique(column="sku"),
        e.ExpectColumnValuesToBeInSet(column="status", value_set=["active", "discontinued"]),
        e.ExpectColumnValuesToBeBetween(column="safety_stock", min_value=0),
        e.ExpectColumnValuesToBeBetween(column="max_backorder_qty", min_value=0),
    ]
