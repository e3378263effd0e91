-- The open PO lines of supplier $supplier_id (optionally of PO $po_id only): where a
-- delay given by event or by hand without a PO line applies.
select po_id, line_no
from purchase_orders
where supplier_id = $supplier_id
  and status = 'open'
  and ($po_id is null or po_id = $po_id)
order by po_id, line_no
