-- A digest of one run's allocation decisions (its promise changes and allocations):
-- the row count and two sums of 64-bit row hashes. Order does not matter, so it is
-- one vectorised pass however many lines; editing, adding or deleting a row changes
-- it. DuckDB's hash() is fast, not cryptographic: the digest detects edits, it does
-- not resist a forger with write access (docs/allocation.md, "Audit"). The audit log stores
-- it; `verify-audit` recomputes it.
with rows_ as (
    select hash('c', order_id, line_no, change, old_status, new_status, old_promised_date,
                new_promised_date) as h1,
           hash(new_promised_date, new_status, old_promised_date, old_status, change, line_no,
                order_id, 'c') as h2
    from promise_changes
    where run_id = $run_id
    union all
    select hash('a', order_id, line_no, sku, supply_kind, supply_ref, qty, promised_date),
           hash(promised_date, qty, supply_ref, supply_kind, sku, line_no, order_id, 'a')
    from allocations
    where run_id = $run_id
)
select sha256(concat_ws(':', count(*), coalesce(sum(h1::hugeint), 0),
                        coalesce(sum(h2::hugeint), 0))) as digest,
       (select count(*) from promise_changes where run_id = $run_id) as changes,
       (select count(*) from allocations where run_id = $run_id) as allocations
from rows_
