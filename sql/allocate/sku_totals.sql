-- Per sku with demand: its key (sid: the sku key of the lines, migration 010), its
-- id, usable stock, usable incoming supply, the open quantity of the committed lines
-- (served first), the number of open lines, and whether the product can be
-- backordered and up to what limit (a sku without a product row cannot).
create or replace temp table _sku as
with demand as (
    select sku_key, max(committed_upto) as committed_total, count(*) as lines
    from _demand
    group by sku_key
),
named as (
    select d.*, coalesce(p.sku, u.sku) as sku, p.status, p.backorderable, p.max_backorder_qty
    from demand as d
    left join products as p on p.sku_key = d.sku_key
    left join _unlinked_skus as u on u.sku_key = d.sku_key
),
supply as (
    select sku,
           coalesce(sum(qty) filter (where supply_kind = 'stock'), 0)::bigint as stock_total,
           coalesce(sum(qty) filter (where supply_kind = 'po'), 0)::bigint as po_total
    from supply_lots
    -- the skus with demand only (an incremental run's few, not every sku's lots)
    where usable and qty > 0 and sku in (select sku from named)
    group by sku
)
select n.sku_key as sid, n.sku,
       coalesce(s.stock_total, 0) as stock_total, coalesce(s.po_total, 0) as po_total,
       n.committed_total, n.lines,
       coalesce(n.status = 'active' and n.backorderable, false) as backorderable,
       n.max_backorder_qty
from named as n
left join supply as s using (sku)
