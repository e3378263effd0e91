-- Orders whose customer-facing state differs from what their last message said.
-- The condition and date mirror backorders.domain.messages.order_state (the pure
-- function decides; this only narrows the orders to look at, in one pass).
with lines as (
    select l.order_id, l.line_no, l.customer_id, l.sku, l.qty_ordered - l.qty_shipped as qty,
           l.status, l.promised_date
    from line_status as l
    where l.status not in ('shipped', 'cancelled')
),
per_order as (
    select order_id, any_value(customer_id) as customer_id,
           case when bool_or(status = 'not_backorderable') then 'not_backorderable'
                when bool_or(status in ('promised', 'unpromised', 'partially_allocated')) then 'backordered'
                when bool_and(status = 'allocated') then 'ready'
                else 'closed' end as condition,
           case when bool_or(status in ('promised', 'unpromised', 'partially_allocated')
                             and promised_date is null) then null
                else max(promised_date) filter (where status in ('promised', 'unpromised', 'partially_allocated'))
           end as promised_date
    from lines
    group by order_id
),
last_told as (
    select order_id, state
    from outbox
    qualify row_number() over (partition by order_id order by created_at desc, message_key desc) = 1
),
changed as (
    select p.*, t.state::varchar as previous_state
    from per_order as p
    left join last_told as t using (order_id)
    where (t.state is null and p.condition in ('backordered', 'not_backorderable'))
       or (t.state is not null and (
               p.condition is distinct from json_extract_string(t.state, '$.condition')
            or (p.condition = 'backordered' and
                p.promised_date::varchar is distinct from json_extract_string(t.state, '$.promised_date'))))
),
in_stock as (
    select sku from supply_lots where supply_kind = 'stock' group by sku having sum(qty) > 0
),
substitutes as (
    -- a product's substitutes that have usable stock now, for the cancellation offer
    select p.sku, list(u.sub order by u.sub) as skus
    from products as p, unnest(p.substitute_skus) as u(sub)
    where u.sub in (select sku from in_stock)
    group by p.sku
),
final as (
    select c.order_id, c.customer_id, c.previous_state,
           cu.email, cu.name as customer_name, cu.locale, cu.email_opt_in,
           l.line_no, l.sku, coalesce(p.name, l.sku) as product_name, l.qty, l.status,
           l.promised_date,
           coalesce(s.skus, []) as substitutes
    from changed as c
    join lines as l using (order_id)
    join customers as cu on cu.customer_id = c.customer_id
    left join products as p on p.sku = l.sku
    left join substitutes as s on s.sku = l.sku
)
select * from final
order by order_id, line_no
