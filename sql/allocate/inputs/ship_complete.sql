-- The skus of each open ship-complete order: its lines are held and dated together,
-- so a change on one of its skus reallocates all of them (and, transitively, the skus
-- of the other ship-complete orders they share).
select distinct ol.order_key, ol.sku_key
from order_lines as ol
semi join (select order_key from orders where ship_complete and status = 'open') as o
    using (order_key)
