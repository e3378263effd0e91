-- A digest of one run's allocation decisions (its promise changes and allocations):
-- the count and the sums of every row's MD5 (as two 64-bit halves). Order does not
-- matter, so it is one parallel pass however many lines; editing, adding or deleting
-- a row changes it. The audit log stores it; `verify-audit` recomputes it.
with rows_ as (
    select concat_ws('|', 'c', order_id, line_no, change, old_status, new_status,
                     old_promised_date, new_promised_date) as txt
    from promise_changes
    where run_id = $run_id
    union all
    select concat_ws('|', 'a', order_id, line_no, sku, supply_kind, supply_ref, qty, promised_date)
    from allocations
    where run_id = $run_id
)
select sha256(concat_ws(':', count(*), coalesce(sum(md5_number_lower(txt)::hugeint), 0),
                        coalesce(sum(md5_number_upper(txt)::hugeint), 0))) as digest,
       (select count(*) from promise_changes where run_id = $run_id) as changes,
       (select count(*) from allocations where run_id = $run_id) as allocations
from rows_
