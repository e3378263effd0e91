"""Every open line balances: ordered - shipped = allocated + promised + unpromised."""

from typing import Any

SUITE = "mart_line_status"
CRITICAL = True
QUERY = """
select order_id, line_no, status, priority_rank,
       qty_ordered - qty_shipped - qty_allocated - qty_promised - qty_unpromised as balance_gap,
       qty_allocated, qty_promised, qty_unpromised,
       (status = 'promised') = (promised_date is not null and status = 'promised') as date_rule
from line_status
where status not in ('shipped', 'cancelled')
"""


def expectations(gx: Any) -> list[Any]:
    """The checks of this suite."""
    e = gx.expectations
    return [
        e.ExpectCompoundColumnsToBeUnique(column_list=["order_id", "line_no"]),
        e.ExpectColumnValuesToBeBetween(column="balance_gap", min_value=0, max_value=0),
        e.ExpectColumnValuesToBeBetween(column="qty_allocated", min_value=0),
        e.ExpectColumnValuesToBeBetween(column="qty_promised", min_value=0),
        e.ExpectColumnValuesToBeBetween(column="qty_unpromised", min_value=0),
        e.ExpectColumnValuesToNotBeNull(column="priority_rank"),
        e.ExpectColumnValuesToBeInSet(
            column="status",
            value_set=[
                "allocated",
                "partially_allocated",
                "promised",
                "unpromised",
                "not_backorderable",
            ],
        ),
    ]
