-- The integer keys a row links to, for rows that lack them: the feeds' MERGE looks
-- them up (feed_rules.LINKS), a row inserted by hand does not. Normally nothing is
-- missing, and each statement is a scan of one column that updates no row.
update orders set customer_key = c.customer_key
from customers as c
where orders.customer_key is null and c.customer_id = orders.customer_id;

update order_lines set order_key = o.order_key
from orders as o
where order_lines.order_key is null and o.order_id = order_lines.order_id;

update order_lines set sku_key = p.sku_key
from products as p
where order_lines.sku_key is null and p.sku = order_lines.sku;
