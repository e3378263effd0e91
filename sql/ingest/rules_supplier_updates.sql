-- supplier updates for unknown PO lines, from another supplier, or with an implausible ETA
select t.row_number,
       concat_ws('; ',
           case when po.po_id is null
                then 'po_id/line_no: unknown PO line "' || t.po_id || ':' || t.line_no || '"' end,
           case when po.po_id is not null and po.supplier_id <> t.supplier_id
                then 'supplier_id: "' || t.supplier_id || '" is not the supplier of PO '
                     || t.po_id || ' ("' || po.supplier_id || '")' end,
           case when abs(datediff('day', $as_of::timestamptz::date, t.expected_at)) > $max_eta_days
                then 'expected_at: ' || t.expected_at::varchar || ' is more than ' || $max_eta_days
                     || ' days from the run date ' || $as_of::timestamptz::date::varchar
                     || ' (a typo?)' end
       ) as reason
from _valid as t
left join purchase_orders as po on po.po_id = t.po_id and po.line_no = t.line_no
where (po.po_id is null or po.supplier_id <> t.supplier_id
       or abs(datediff('day', $as_of::timestamptz::date, t.expected_at)) > $max_eta_days)
