-- decisions_digest.sql with the allocation rows' part given ($n, $h1, $h2: from
-- alloc_digest_parts.sql) and the run's promise changes summed here: the same digest,
-- without a pass over every allocation row of the run.
with changes as (
    select count(*) as n,
           coalesce(sum(hash('c', order_id, line_no, change, old_status, new_status,
                             old_promised_date, new_promised_date)::hugeint), 0) as h1,
           coalesce(sum(hash(new_promised_date, new_status, old_promised_date, old_status,
                             change, line_no, order_id, 'c')::hugeint), 0) as h2
    from promise_changes
    where run_id = $run_id
)
select sha256(concat_ws(':', n + $n::bigint, h1 + $h1::hugeint, h2 + $h2::hugeint)) as digest,
       n as changes
from changes
