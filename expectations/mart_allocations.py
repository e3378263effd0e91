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

# The rows that break the suite, with what they break (gx_runner names them when it fails).
VIOLATIONS = """
select sku, supply_kind, supply_ref, given, available,
       sku || ' from ' || supply_kind || ' ' || supply_ref || ': gave ' || given || ', '
       || coalesce('has ' || available, 'no such supply lot') as broken
from batch
where available is null or given > available
order by sku, supply_kind, supply_ref
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
