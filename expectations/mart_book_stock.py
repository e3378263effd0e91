"""The inventory equations: book stock = count + receipts - shipments, usable <= on hand."""

from typing import Any

SUITE = "mart_book_stock"
CRITICAL = True
QUERY = """
select b.location_id, b.sku, b.on_hand,
       b.counted + b.receipts_since - b.shipped_since - b.on_hand as equation_gap,
       coalesce(s.qty, 0) as usable
from book_stock as b
left join supply_lots as s
    on s.supply_kind = 'stock' and s.sku = b.sku and s.supply_ref = b.location_id
"""

# The rows that break the suite, with what they break (gx_runner names them when it fails).
VIOLATIONS = """
select sku, location_id, on_hand, equation_gap, usable,
       sku || ' at ' || location_id || ': ' || concat_ws(', ',
           case when copies > 1 then 'listed ' || copies || ' times in book_stock' end,
           case when equation_gap <> 0
                then 'count + receipts - shipments differs from on_hand by ' || equation_gap end,
           case when on_hand < usable
                then 'on hand ' || on_hand || ' is below the usable ' || usable
                     || case when on_hand < 0 then ' (book stock is negative: more shipped '
                              || 'since the count than counted and received)' else '' end end,
           case when usable < 0 then 'usable ' || usable || ' is negative' end) as broken
from (select *, count(*) over (partition by location_id, sku) as copies from batch) as b
where copies > 1 or equation_gap <> 0 or on_hand < usable or usable < 0
order by sku, location_id
"""


def expectations(gx: Any) -> list[Any]:
    """The checks of this suite."""
    e = gx.expectations
    return [
        e.ExpectCompoundColumnsToBeUnique(column_list=["location_id", "sku"]),
        e.ExpectColumnValuesToBeBetween(column="equation_gap", min_value=0, max_value=0),
        e.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="on_hand",
            column_B="usable",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
        ),
        e.ExpectColumnValuesToBeBetween(column="usable", min_value=0),
    ]
