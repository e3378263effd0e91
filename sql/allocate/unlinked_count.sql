-- Rows whose link is missing or points at no row (see link_keys.sql): anti-joins on
-- the integer keys, about a second at 10M lines. A row with a null key is counted too:
-- the anti-join keeps it.
select (select count(*) from orders anti join customers using (customer_key))
     + (select count(*) from order_lines anti join orders using (order_key))
     + (select count(*) from order_lines anti join products using (sku_key))
