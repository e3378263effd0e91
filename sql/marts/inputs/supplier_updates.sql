-- Fingerprint per sku of the supplier updates of its PO lines (supply_lots.sql applies
-- the latest per PO line).
select po.sku,
       sum(hash(u.po_id, u.line_no, u.expected_at, u.qty_confirmed, u.reported_at)::hugeint) as fp
from supplier_updates as u
join purchase_orders as po using (po_id, line_no)
group by po.sku
