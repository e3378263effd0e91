-- The reconcile step's headline numbers: the supply that open backorders can draw.
-- (Demand-side numbers come with the allocation, which ranks the open lines.)
with stock_units as (
    select coalesce(sum(qty_before_safety), 0) as on_hand, coalesce(sum(qty), 0) as usable,
           count(distinct sku) filter (where qty > 0) as skus
    from supply_lots where supply_kind = 'stock'
),
po_units as (
    select coalesce(sum(qty) filter (where usable), 0) as incoming,
           count(*) filter (where usable) as usable_lines,
           count(*) filter (where note like 'overdue%') as overdue
    from supply_lots where supply_kind = 'po'
)
select s.on_hand, s.on_hand - s.usable, s.usable, s.skus, p.incoming, p.usable_lines, p.overdue
from stock_units as s, po_units as p
