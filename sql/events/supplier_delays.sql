-- The PO lines whose effective ETA the supplier updates loaded in this run moved later,
-- or whose confirmed quantity they cut: one row per PO line, for the
-- `backorders.supplier.delayed` events. "Effective" is the rule of supply_lots.sql: the
-- latest update (by reported_at) applies when it is newer than the PO row, and a
-- confirmed quantity caps the PO's. Before = without this run's rows, after = with them.
-- lines_affected: the open lines of the PO's sku waiting for supply (promised,
-- unpromised or partially allocated in line_status: the lines this supply can serve);
-- lines_promised_from_it: the lines whose last allocation drew on this PO line.
with run_files as (
    select sha256
    from ingested_files
    where run_id = $run_id and status = 'loaded' and feed = 'supplier_updates'
),
updates as (
    select u.*, u.source_sha256 in (select sha256 from run_files) as this_run
    from supplier_updates as u
    where (u.po_id, u.line_no) in (
        select (po_id, line_no) from supplier_updates
        where source_sha256 in (select sha256 from run_files)
    )
),
latest as (
    select po_id, line_no,
           arg_max(expected_at, reported_at) as eta_after,
           max(reported_at) as reported_after,
           arg_max(qty_confirmed, reported_at) filter (where qty_confirmed is not null)
               as qty_after,
           arg_max(reason, reported_at) as reason,
           arg_max(expected_at, reported_at) filter (where not this_run) as eta_before,
           max(reported_at) filter (where not this_run) as reported_before,
           arg_max(qty_confirmed, reported_at) filter (where qty_confirmed is not null
                                                        and not this_run) as qty_before
    from updates
    group by po_id, line_no
),
moved as (
    select po.supplier_id, po.po_id, po.line_no, po.sku,
           case when l.reported_before > po.updated_at then l.eta_before
                else po.expected_at end as old_date,
           case when l.reported_after > po.updated_at then l.eta_after
                else po.expected_at end as new_date,
           least(po.qty, coalesce(l.qty_before, po.qty)) as old_qty,
           least(po.qty, coalesce(l.qty_after, po.qty)) as new_qty,
           l.reason, l.reported_after as reported_at
    from latest as l
    join purchase_orders as po using (po_id, line_no)
    where po.status = 'open'
),
waiting as (
    select sku, count(*) as lines
    from line_status
    where status in ('promised', 'unpromised', 'partially_allocated')
    group by sku
),
promised_from as (
    select a.supply_ref, count(distinct (a.order_id, a.line_no)) as lines
    from allocations as a
    where a.run_id = (select run_id from allocation_runs order by run_no desc limit 1)
      and a.supply_kind = 'po'
    group by a.supply_ref
),
final as (
    select m.supplier_id, m.po_id, m.line_no, m.sku, m.old_date, m.new_date,
           greatest(datediff('day', m.old_date, m.new_date), 0) as days_late,
           m.old_qty, m.new_qty, m.new_qty - m.old_qty as qty_change,
           coalesce(w.lines, 0) as lines_affected,
           coalesce(p.lines, 0) as lines_promised_from_it,
           m.reason, m.reported_at
    from moved as m
    left join waiting as w on w.sku = m.sku
    left join promised_from as p on p.supply_ref = m.po_id || ':' || m.line_no
    where m.new_date > m.old_date or m.new_qty < m.old_qty
)
select * from final
order by supplier_id, po_id, line_no
