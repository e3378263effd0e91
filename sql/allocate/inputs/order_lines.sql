-- Fingerprint per order line of every column the allocation and the line results read
-- (demand.sql, line_status.sql, the order value), its sku and order keys, and whether a
-- closed line is still within the 30 days line_status keeps it.
select line_key, sku_key, order_key,
       hash(line_key, sku_key, order_key, order_id, line_no, qty, unit_price, status,
            updated_at >= $as_of::timestamptz - interval 30 day) as fp
from order_lines
