-- What the feeds' MERGE gives every row it stores (feed_rules.OWN_KEYS and LINKS), for
-- the rows inserted by hand: their own key (numbered after the largest so far), and
-- the keys they link to, where missing or pointing at no row (a row deleted and
-- inserted again by hand gets a new key of its own). Run only when
-- allocation_store._link_keys finds such a row (normally none).
update customers set customer_key = n.k
from (select rowid as rid,
             (select coalesce(max(customer_key), 0) from customers) + row_number() over () as k
      from customers where customer_key is null) as n
where customers.rowid = n.rid;

update products set sku_key = n.k
from (select rowid as rid,
             (select coalesce(max(sku_key), 0) from products) + row_number() over () as k
      from products where sku_key is null) as n
where products.rowid = n.rid;

update orders set order_key = n.k
from (select rowid as rid,
             (select coalesce(max(order_key), 0) from orders) + row_number() over () as k
      from orders where order_key is null) as n
where orders.rowid = n.rid;

update order_lines set line_key = n.k
from (select rowid as rid,
             (select coalesce(max(line_key), 0) from order_lines) + row_number() over () as k
      from order_lines where line_key is null) as n
where order_lines.rowid = n.rid;

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
