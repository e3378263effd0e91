-- The lines ranked ahead of one line for the same sku, and what they took.
with me as (
    select sku, priority_rank from demand_lines where order_id = $order_id and line_no = $line_no
),
ahead as (
    select d.order_id, d.line_no, d.priority_rank, d.qty_open, o.priority, c.tier, o.placed_at,
           ls.qty_allocated, ls.qty_promised
    from demand_lines as d
    join me on d.sku = me.sku and d.priority_rank < me.priority_rank
    join orders as o on o.order_id = d.order_id
    left join customers as c on c.customer_id = o.customer_id
    left join line_status as ls on ls.order_id = d.order_id and ls.line_no = d.line_no
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
