"""Expectations for the rows of the customers feed loaded in this run."""

from typing import Any

SUITE = "customers"
CRITICAL = False
QUERY = """
select * exclude (source_sha256) from customers
where source_sha256 in (
    select sha256 from ingested_files where run_id = $run_id and status = 'loaded'
)
"""


def expectations(gx: Any) -> list[Any]:
    """The checks of this suite."""
    e = gx.expectations
    return [
        e.ExpectColumnValuesToNotBeNull(column="customer_id"),
        e.ExpectColumnValuesToBeUnique(column="customer_id"),
        e.ExpectColumnValuesToNotBeNull(column="email"),
        e.ExpectColumnValuesToNotBeNull(column="tier"),
        e.ExpectColumnValuesToBeInSet(column="email_opt_in", value_set=[True, False]),
    ]
