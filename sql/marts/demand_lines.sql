-- Open order lines (open order, open line, not fully shipped) with the facts the
-- priority key reads, ranked per sku. {order_by} comes from
-- backorders.domain.priority.order_by_sql (a fixed whitelist), never from input.
create or replace table demand_lines as
with shipped as (
    -- up to the run's as_of, like book stock: a backfilled run sees the past as it was
    select order_id, line_no, sum(qty) as qty
    from shipments
    where shipped_at <= $as_of
    group by all
),
order_value as (
    select order_id, sum(qty * unit_price) as order_value
    from order_lines
    where status <> 'cancelled'
    group by all
),
open_lines as (
    select ol.order_id, ol.line_no, ol.sku, o.customer_id,
           ol.qty as qty_ordered,
           coalesce(s.qty, 0) as qty_shipped,
           ol.qty - coalesce(s.qty, 0) as qty_open,
           o.priority as order_priority,
           c.tier,
           coalesce(list_position($tiers, c.tier), len($tiers) + 1) as tier_rank,
           o.placed_at,
           coalesce(v.order_value, 0) as order_value,
           coalesce(p.status = 'active' and p.backorderable, false) as backorderable,
           p.max_backorder_qty,
           o.ship_complete,
           -- held stock in the last run (fully allocated, released for picking): served
           -- first unless keep_committed is off
           $keep_committed and coalesce(prev.status = 'allocated', false) as committed
    from order_lines as ol
    join orders as o using (order_id)
    left join customers as c on c.customer_id = o.customer_id
    left join products as p on p.sku = ol.sku
    left join shipped as s on s.order_id = ol.order_id and s.line_no = ol.line_no
    left join order_value as v on v.order_id = ol.order_id
    left join line_status as prev on prev.order_id = ol.order_id and prev.line_no = ol.line_no
    where o.status = 'open' and ol.status = 'open' and ol.qty - coalesce(s.qty, 0) > 0
)
-- Only what allocation needs leaves the window: every column carried through the
-- sort costs time at 10M lines (the sort facts are recomputed by `explain`).
select order_id, line_no, sku, customer_id, qty_ordered, qty_shipped, qty_open, backorderable,
       max_backorder_qty, ship_complete, committed,
       row_number() over (partition by sku order by {order_by}) as priority_rank
from open_lines
