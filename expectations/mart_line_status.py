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

# The rows that break the suite, with what they break (gx_runner names them when it fails).
VIOLATIONS = """
select order_id, line_no, status, balance_gap,
       'line ' || order_id || ':' || line_no || ': ' || concat_ws(', ',
           case when copies > 1 then 'listed ' || copies || ' times' end,
           case when balance_gap <> 0
                then 'ordered - shipped - allocated - promised - unpromised = ' || balance_gap end,
           case when qty_allocated < 0 or qty_promised < 0 or qty_unpromised < 0
                then 'a negative quantity (allocated ' || qty_allocated || ', promised '
                     || qty_promised || ', unpromised ' || qty_unpromised || ')' end,
           case when priority_rank is null then 'no priority rank' end,
           case when status not in ('allocated', 'partially_allocated', 'promised', 'unpromised',
                                    'not_backorderable') then 'status ' || status end) as broken
from (select *, count(*) over (partition by order_id, line_no) as copies from batch) as b
where copies > 1 or balance_gap <> 0 or qty_allocated < 0 or qty_promised < 0
   or qty_unpromised < 0 or priority_rank is null
   or status not in ('allocated', 'partially_allocated', 'promised', 'unpromised',
                     'not_backorderable')
order by order_id, line_no
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
