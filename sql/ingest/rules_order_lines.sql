-- order lines of unknown orders or unknown skus (anti-joins: the reason text is
-- built only for the rows that break a rule)
select t.row_number,
       concat_ws('; ',
           case when o.order_id is null then 'order_id: unknown order "' || t.order_id || '"' end,
           case when p.sku is null then 'sku: unknown sku "' || t.sku || '"' end
       ) as reason
from _valid as t
left join orders as o on o.order_id = t.order_id
left join products as p on p.sku = t.sku
where o.order_id is null or p.sku is null
