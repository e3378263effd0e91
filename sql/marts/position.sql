-- The reconcile step's headline numbers: stock against open backorders.
with demand as (
    select count(distinct sku) as skus, count(*) as lines, coalesce(sum(qty_open), 0) as units
    from demand_lines
),
stock_units as (
    select coalesce(sum(qty_before_safety), 0) as on_hand, coalesce(sum(qty), 0) as usable
    from supply_lots where supply_kind = 'stock'
),
po_units as (
    select coalesce(sum(qty) filter (where usable), 0) as incoming,
           count(*) filter (where note like 'overdue%') as overdue
    from supply_lots where supply_kind = 'po'
),
stock_by_sku as (
    select sku, sum(qty) as usable from supply_lots where supply_kind = 'stock' group by all
),
fillable as (
    -- lines whose whole open quantity fits in the usable stock left after higher-ranked lines
    select count(*) as lines
    from (
        select d.sku, d.qty_open, s.usable,
               sum(d.qty_open) over (partition by d.sku order by d.priority_rank) as cum
        from demand_lines as d
        join stock_by_sku as s using (sku)
    )
    where cum <= usable
)
select d.skus, d.lines, d.units, s.on_hand, s.on_hand - s.usable, s.usable, p.incoming, p.overdue,
       f.lines
from demand as d, stock_units as s, po_units as p, fillable as f
