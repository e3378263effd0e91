-- Fingerprint per sku of its PO lines: the open ones are supply lots, the received
-- ones (up to the run's as_of) receipts into book stock (book_stock.sql, supply_lots.sql).
select sku,
       sum(hash(po_id, line_no, qty, location_id, status, expected_at, updated_at, received_at,
                received_at <= $as_of)::hugeint) as fp
from purchase_orders
group by sku
