-- Every order with a payment authorization: what was authorized, captured and asked for,
-- and whether the authorization lapses before the order can be captured (reauthorize:
-- its promised date is after the expiry day, or it has no date yet), so the shop can ask
-- the customer to authorize again. $order_id null: all orders. (docs/payments.md)
with authorized as (
    select * exclude (payment_expires_at, placed_at),
           coalesce(payment_expires_at, placed_at + to_days($authorization_days::integer))
               as expires_at
    from order_authorizations
    where $order_id::varchar is null or order_id = $order_id::varchar
),

per_order as (
    select ls.order_id,
           bool_and(ls.status in ('cancelled', 'shipped')
                    or (ls.status = 'allocated' and not a.ship_complete)) as complete,
           bool_or(ls.status not in ('cancelled', 'shipped', 'allocated')
                   and ls.promised_date is null) as undated,
           max(ls.promised_date) filter (where ls.status not in ('cancelled', 'shipped'))
               as promised_date
    from line_status as ls
    join authorized as a using (order_id)
    group by ls.order_id
),

asked as (
    select order_id,
           coalesce(sum(amount) filter (where kind = 'capture' and status = 'succeeded'), 0)
               as captured,
           coalesce(sum(amount) filter (where kind = 'capture'), 0) as requested,
           bool_or(kind = 'release' or coalesce(final_capture, true)) as closed,
           bool_or(kind = 'release' and status = 'succeeded') as released,
           count(*) filter (where status = 'failed') as failed,
           count(*) filter (where status in ('pending', 'sending')) as waiting
    from payment_requests
    where not preview
    group by order_id
),

final as (
    select a.order_id, a.customer_id, a.provider, a.payment_ref, a.authorized, a.currency,
           a.expires_at,
           case when p.undated then null else p.promised_date end as promised_date,
           coalesce(p.complete, false) as complete,
           coalesce(q.captured, 0) as captured,
           coalesce(q.requested, 0) as requested,
           coalesce(q.closed, false) as closed,
           coalesce(q.released, false) as released,
           coalesce(q.failed, 0) as failed,
           coalesce(q.waiting, 0) as waiting,
           $now::timestamptz >= a.expires_at and not coalesce(q.closed, false) as expired,
           not coalesce(p.complete, false) and not coalesce(q.closed, false)
               and p.order_id is not null
               and (p.undated or p.promised_date > a.expires_at::date) as reauthorize
    from authorized as a
    left join per_order as p using (order_id)
    left join asked as q using (order_id)
)

select * from final order by order_id
