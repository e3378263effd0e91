-- The open lines ranked ahead of one line for the same sku, and what they took. Read
-- from the table behind line_status (migration 010), with the line's sku and rank as
-- parameters: only that sku's lines are joined, not the whole view.
with ahead as (
    select ol.order_id, ol.line_no, r.priority_rank, r.qty_ordered - r.qty_shipped as qty_open,
           o.priority, c.tier, o.placed_at, r.qty_allocated, r.qty_promised
    from order_lines as ol
    join line_results as r using (line_key)
    join orders as o on o.order_key = ol.order_key
    left join customers as c on c.customer_id = o.customer_id
    where ol.sku = $sku and r.priority_rank < $rank
      and r.status not in ('shipped', 'cancelled')
)
select count(*) over () as n_ahead,
       sum(qty_open) over () as units_ahead,
       sum(qty_allocated) over () as stock_ahead,
       sum(qty_promised) over () as po_ahead,
       order_id, line_no, priority_rank, qty_open, priority, tier, placed_at, qty_allocated,
       qty_promised
from ahead
order by priority_rank desc
limit $show
