"""Great Expectations suites as code: one module per feed or mart.

Each module defines SUITE (name), QUERY (a DuckDB query giving the batch; it may
use $run_id), CRITICAL (a failure stops the run) and expectations(gx) returning
the list of expectations. backorders.adapters.gx_runner runs them.
"""

from backorders.domain.contract import FEED_ORDER

FEED_SUITES = FEED_ORDER  # one suite per feed, named like the feed
POST_ALLOCATION_SUITES = ("mart_line_status", "mart_allocations")
