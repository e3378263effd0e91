-- Fingerprint per sku key of its order lines: every column the allocation and the
-- line results read (demand.sql, line_status.sql, the order value), and whether a
-- closed line is still within the 30 days line_status keeps it.
select sku_key,
       sum(hash(line_key, order_key, order_id, line_no, qty, unit_price, status,
                updated_at >= $as_of::timestamptz - interval 30 day)::hugeint) as fp
from order_lines
group by sku_key
