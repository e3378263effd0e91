-- Each count not judged yet against the book stock it should show: the previous count
-- of the same location/sku, plus receipts, minus shipments in between. Not only this
-- run's counts: those of a run that stopped before or during its validation too, so
-- that no count escapes the gate (a count with no earlier one is never judged).
insert into inventory_accuracy
with new_counts as (
    select c.location_id, c.sku, c.on_hand as counted, c.as_of
    from stock_counts as c
    -- a run with a gate decision judged its counts (in the same transaction): only the
    -- counts of runs without one are looked at, against the judgments so far
    anti join inventory_gate as g on g.run_id = c.run_id
    anti join inventory_accuracy as j
        on j.location_id = c.location_id and j.sku = c.sku and j.as_of = c.as_of
    -- the same count in two files: judged once
    qualify row_number() over (
        partition by c.location_id, c.sku, c.as_of order by c.run_id, c.source_sha256) = 1
),
with_prev as (
    select n.*, p.on_hand as prev_count, p.as_of as prev_as_of
    from new_counts as n
    asof join stock_counts as p
        on p.location_id = n.location_id and p.sku = n.sku and n.as_of > p.as_of
),
receipts as (
    select w.location_id, w.sku, w.as_of, sum(po.qty) as qty
    from with_prev as w
    join purchase_orders as po
        on po.location_id = w.location_id and po.sku = w.sku and po.status = 'received'
       and po.received_at > w.prev_as_of and po.received_at <= w.as_of
    group by all
),
shipped as (
    select w.location_id, w.sku, w.as_of, sum(s.qty) as qty
    from with_prev as w
    join shipments as s
        on s.location_id = w.location_id and s.sku = w.sku
       and s.shipped_at > w.prev_as_of and s.shipped_at <= w.as_of
    group by all
),
final as (
    select $run_id as run_id, w.location_id, w.sku, w.prev_as_of, w.as_of, w.prev_count,
           coalesce(r.qty, 0) as receipts, coalesce(s.qty, 0) as shipped,
           w.prev_count + coalesce(r.qty, 0) - coalesce(s.qty, 0) as book,
           w.counted
    from with_prev as w
    left join receipts as r using (location_id, sku, as_of)
    left join shipped as s using (location_id, sku, as_of)
)
select run_id, location_id, sku, prev_as_of, as_of, prev_count, receipts, shipped, book, counted,
       abs(counted - book) <= greatest($tol_units, $tol_pct * abs(book)) as accurate
from final
