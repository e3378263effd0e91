-- The allocation rows' part of a run's decisions digest (decisions_digest.sql): the
-- row count and the two sums of row hashes, over {rows} (a run's rows in the
-- allocations view, or the rows an incremental run wrote or replaced). The parts add
-- up, so an incremental run's digest is the previous run's parts minus the rows it
-- replaced plus the rows it wrote (allocation_store._decisions_digest).
select count(*) as n,
       coalesce(sum(hash('a', order_id, line_no, sku, supply_kind::varchar, supply_ref, qty,
                         promised_date)::hugeint), 0) as h1,
       coalesce(sum(hash(promised_date, qty, supply_ref, supply_kind::varchar, sku, line_no,
                         order_id, 'a')::hugeint), 0) as h2
{rows}
