-- Orders whose customer-facing state differs from what their last message said, or
-- that have waited past $max_wait_days (null: never) without a cancellation offer.
-- The condition and date mirror backorders.domain.messages.order_state (the pure
-- function decides; this only narrows the orders to look at, in one pass).
-- Derived from line_status against the outbox, so it is crash-safe: if a run dies
-- after allocating and before queueing, the next run finds the same orders again.
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
history as (
    -- what earlier messages told: the first promised date, an apology, a cancellation offer
    select order_id,
           arg_min(json_extract_string(state, '$.promised_date')::date, created_at)
               filter (where json_extract_string(state, '$.promised_date') is not null)
               as first_promised_date,
           bool_or(kind = 'delay_apology') as apologized,
           bool_or(kind = 'cancellation_offer') as cancellation_offered
    from outbox
    group by order_id
),
changed as (
    select p.*, t.state::varchar as previous_state, o.placed_at::date as placed_on,
           h.first_promised_date, coalesce(h.apologized, false) as apologized,
           coalesce(h.cancellation_offered, false) as cancellation_offered
    from per_order as p
    join orders as o using (order_id)
    left join last_told as t using (order_id)
    left join history as h using (order_id)
    where (t.state is null and p.condition in ('backordered', 'not_backorderable'))
       or (t.state is not null and (
               p.condition is distinct from json_extract_string(t.state, '$.condition')
            or (p.condition = 'backordered' and
                p.promised_date::varchar is distinct from json_extract_string(t.state, '$.promised_date'))))
       or (p.condition = 'backordered' and $max_wait_days is not null
           and not coalesce(h.cancellation_offered, false)
           and date_diff('day', o.placed_at::date, coalesce(p.promised_date, $today::date)) > $max_wait_days)
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
    select c.order_id, c.customer_id, c.previous_state, c.placed_on, c.first_promised_date,
           c.apologized, c.cancellation_offered,
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
