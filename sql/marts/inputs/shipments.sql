-- Fingerprint per sku of the shipments in effect at the run's as_of: they leave book
-- stock (book_stock.sql) and reduce the open quantity of their line (demand.sql; a
-- shipment's sku is its line's, ingest enforces it). Future-dated ones count once due.
select sku, sum(hash(shipment_id, order_id, line_no, location_id, qty, shipped_at)::hugeint) as fp
from shipments
where shipped_at <= $as_of
group by sku
