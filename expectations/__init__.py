"""Great Expectations suites as code: one module per feed or mart.

Each module defines SUITE (name), QUERY (a DuckDB query giving the batch; it may
use $run_id), CRITICAL (a failure stops the run) and expectations(gx) returning
the list of expectations. backorders.adapters.gx_runner runs them.
"""

FEED_SUITES = (
    "customers",
    "products",
    "orders",
    "order_lines",
    "stock",
    "purchase_orders",
    "supplier_updates",
    "shipments",
)
PRE_ALLOCATION_SUITES = (*FEED_SUITES, "mart_book_stock")
POST_ALLOCATION_SUITES = ("mart_line_status", "mart_allocations")
