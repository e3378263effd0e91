-- The keys rows inserted by hand link to, where missing or pointing at no row (a row
-- deleted and inserted again by hand gets a new key of its own), as the feeds' MERGE
-- looks them up (feed_rules.LINKS). Run by allocation_store.link_keys, after it has
-- numbered such rows (_NUMBER_ROWS), only when it finds one (normally none).
update orders set customer_key = c.customer_key
from customers as c
where c.customer_id = orders.customer_id
  and (orders.customer_key is null
       or orders.customer_key not in (select customer_key from customers));

update order_lines set order_key = o.order_key
from orders as o
where o.order_id = order_lines.order_id
  and (order_lines.order_key is null
       or order_lines.order_key not in (select order_key from orders));

update order_lines set sku_key = p.sku_key
from products as p
where p.sku = order_lines.sku
  and (order_lines.sku_key is null
       or order_lines.sku_key not in (select sku_key from products));
