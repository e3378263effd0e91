-- One line's allocation, explained: its rank and the facts the priority key read.
select l.order_id, l.line_no, l.sku, l.status, l.priority_rank, l.qty_ordered, l.qty_shipped,
       l.qty_allocated, l.qty_promised, l.qty_unpromised, l.promised_date, l.reason,
       o.priority as order_priority, c.tier, o.placed_at,
       (select sum(x.qty * x.unit_price) from order_lines as x
        where x.order_id = l.order_id and x.status <> 'cancelled') as order_value,
       p.status as product_status, p.backorderable, p.safety_stock
from line_status as l
join orders as o using (order_id)
left join customers as c on c.customer_id = o.customer_id
left join products as p on p.sku = l.sku
where l.order_id = $order_id and ($line_no is null or l.line_no = $line_no)
order by l.line_no
