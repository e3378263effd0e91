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
