-- Fingerprint per sku of the product facts reconcile and allocation read: safety stock
-- (supply_lots.sql), status and backorderability, the backorder limit (sku_totals.sql).
select sku, hash(sku_key, status, backorderable, max_backorder_qty, safety_stock)::hugeint as fp
from products
