"""Expectations for the rows of the orders feed loaded in this run."""

from typing import Any

SUITE = "orders"
CRITICAL = False
QUERY = """
select * exclude (source_sha256) from orders
where source_sha256 in (
    select sha256 from ingested_files where run_id = $run_id and status = 'loaded'
)
"""


def expectations(gx: Any) -> list[Any]:
    """The checks of this suite."""
    e = gx.expectations
    return [
        e.ExpectColumnValuesToBeUnique(column="order_id"),
        e.ExpectColumnValuesToNotBeNull(column="customer_id"),
        e.ExpectColumnValuesToBeInSet(
            column="status", value_set=["open", "cancelled", "completed"]
        ),
        e.ExpectColumnValuesToNotBeNull(column="placed_at"),
    ]
