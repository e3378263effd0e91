-- order lines of unknown orders or unknown skus
with checked as (
    select t.row_number,
           concat_ws('; ',
               case when o.order_id is null then 'order_id: unknown order "' || t.order_id || '"' end,
               case when p.sku is null then 'sku: unknown sku "' || t.sku || '"' end
           ) as reason
    from _typed as t
    left join orders as o on o.order_id = t.order_id
    left join products as p on p.sku = t.sku
    where t._reject_reason is null
)
select row_number, reason from checked where reason <> ''
