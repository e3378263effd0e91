-- Rows without their own key (inserted by hand), and rows whose link is missing or
-- points at no row (see link_keys.sql): scans and anti-joins on the integer keys, about
-- a second at 10M lines. A row with a null link is counted too: the anti-join keeps it.
select (select count(*) from customers where customer_key is null)
     + (select count(*) from products where sku_key is null)
     + (select count(*) from orders where order_key is null)
     + (select count(*) from order_lines where line_key is null)
     + (select count(*) from orders anti join customers using (customer_key))
     + (select count(*) from order_lines anti join orders using (order_key))
     + (select count(*) from order_lines anti join products using (sku_key))
