"""No supply lot gives more than it has in this run's allocations."""

from typing import Any

SUITE = "mart_allocations"
CRITICAL = True
QUERY = """
select a.supply_kind, a.supply_ref, a.sku, sum(a.qty) as given, any_value(s.qty) as available
from allocations as a
left join supply_lots as s
    on s.sku = a.sku and s.supply_kind = a.supply_kind and s.supply_ref = a.supply_ref
where a.run_id = $run_id
group by all
"""


def expectations(gx: Any) -> list[Any]:
    """The checks of this suite."""
    e = gx.expectations
    return [
        e.ExpectColumnValuesToNotBeNull(column="available"),
        e.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="available",
            column_B="given",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
        ),
    ]
