-- How many open lines the last run ranked for one sku (the table behind line_status,
-- joined for that sku only).
select count(*)
from order_lines as ol
join line_results as r using (line_key)
where ol.sku = $sku and r.status not in ('shipped', 'cancelled')
