-- Every open line's share, in closed form from its place in the order of service
-- (no pour loop, no second sort). Per sku, with T usable stock, P usable incoming
-- supply, L the backorder limit, a line of q units starting at s_start on the
-- stock axis (open units of the lines served before it):
--   stock     = clamp(T - s2, 0, q), s2 = s_start minus held units before it
--               (held ship-complete lines take no stock and leave the axis)
--   need      = q - stock; need before it = max(0, s2 - T) + held units before it
--   accepted  = min(need, max(0, L - need_before)) (all of it without a limit;
--               none for a product that cannot be backordered)
--   po        = clamp(P - acc_before, 0, accepted), acc_before = min(need_before, L)
-- The sums telescope because every step serves lines in the same order; the
-- reference allocator (backorders.domain.allocation) does the same by loops, and
-- the tests check that both agree. Held lines: _held_before (held_before.sql).
create or replace temp table _lines as
with held as (
    select p.*, coalesce(h.held, false) as held, coalesce(h.held_before, 0) as held_before
    from _placed as p
    left join _held_before as h using (lid)
),
stock as (
    select *, s_start - held_before as s2,
           case when held then 0
                else least(qty_open, greatest(0, stock_total - (s_start - held_before))) end
               as qty_allocated
    from held
),
accept as (
    select *, qty_open - qty_allocated as need,
              greatest(0, s2 - stock_total) + held_before as need_before
    from stock
),
final as (
    select *,
           case when not backorderable then 0
                when max_backorder_qty is null then need
                else least(need, greatest(0, max_backorder_qty - need_before)) end as accepted,
           case when not backorderable then 0
                when max_backorder_qty is null then need_before
                else least(need_before, max_backorder_qty) end as acc_before
    from accept
)
select lid, sid, order_key, qty_ordered, qty_shipped, qty_open,
       backorderable, max_backorder_qty, ship_complete, committed, priority_rank, held,
       lines_for_sku, usable_qty, s2, qty_allocated, need - accepted as refused, acc_before,
       least(accepted, greatest(0, po_total - acc_before)) as qty_promised
from final
