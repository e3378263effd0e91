-- shipments of unknown order lines, or of another sku than the line's
select t.row_number,
       concat_ws('; ',
           case when ol.order_id is null
                then 'order_id/line_no: unknown order line "' || t.order_id || ':' || t.line_no || '"' end,
           case when ol.order_id is not null and ol.sku <> t.sku
                then 'sku: "' || t.sku || '" is not the sku of order line ' || t.order_id || ':'
                     || t.line_no || ' ("' || ol.sku || '")' end
       ) as reason
from _valid as t
left join order_lines as ol on ol.order_id = t.order_id and ol.line_no = t.line_no
where ol.order_id is null or ol.sku <> t.sku
