-- A SHA-256 digest of one run's allocation decisions (its promise changes and its
-- allocations) in key order, hashed in 1,024 buckets so no single string gets big.
-- The audit log stores it; `verify-audit` recomputes it to detect edited rows.
with changes as (
    select hash(order_id, line_no) % 1024 as bucket,
           concat_ws('|', order_id, line_no, change, old_status, new_status,
                     old_promised_date, new_promised_date) as txt,
           order_id, line_no, '' as supply_ref
    from promise_changes
    where run_id = $run_id
),
allocs as (
    select hash(order_id, line_no) % 1024 as bucket,
           concat_ws('|', order_id, line_no, sku, supply_kind, supply_ref, qty, promised_date) as txt,
           order_id, line_no, supply_ref
    from allocations
    where run_id = $run_id
),
buckets as (
    select bucket, sha256(string_agg(txt, chr(10) order by order_id, line_no, supply_ref, txt)) as digest
    from (select * from changes union all select * from allocs)
    group by bucket
)
select coalesce(sha256(string_agg(digest, '' order by bucket)), sha256('')) as digest,
       (select count(*) from promise_changes where run_id = $run_id) as changes,
       (select count(*) from allocations where run_id = $run_id) as allocations
from buckets
