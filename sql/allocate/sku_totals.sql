-- Per sku with demand: an integer id for the joins of this run, usable stock, usable
-- incoming supply, the open quantity of the committed lines (served first), the
-- number of open lines, and whether the product can be backordered and up to what
-- limit (a sku without a product row cannot).
create or replace temp table _sku as
with supply as (
    select sku,
           coalesce(sum(qty) filter (where supply_kind = 'stock'), 0)::bigint as stock_total,
           coalesce(sum(qty) filter (where supply_kind = 'po'), 0)::bigint as po_total
    from supply_lots
    where usable and qty > 0
    group by sku
),
demand as (
    select sku, max(committed_upto) as committed_total, count(*) as lines
    from _demand
    group by sku
)
select row_number() over (order by d.sku) as sid, d.sku,
       coalesce(s.stock_total, 0) as stock_total, coalesce(s.po_total, 0) as po_total,
       d.committed_total, d.lines,
       coalesce(p.status = 'active' and p.backorderable, false) as backorderable,
       p.max_backorder_qty
from demand as d
left join supply as s using (sku)
left join products as p using (sku)
