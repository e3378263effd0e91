-- The payment requests this run's allocation deserves (docs/payments.md), the set-based
-- form of backorders.domain.payments.decide: per order with an authorization, what
-- its lines have in stock against what earlier real requests asked for. Keys already
-- in payment_requests are dropped (a rerun queues nothing). Previews (dry runs) told
-- the provider nothing: they are not "earlier requests", and get keys of their own.
create or replace temp table payment_new as
with authorized as (
    select * exclude (payment_expires_at, placed_at),
           coalesce(payment_expires_at, placed_at + to_days($authorization_days::integer))
               as expires_at
    from order_authorizations
),

lines as (
    select ls.order_id,
           ls.status,
           ls.qty_shipped,
           ls.qty_allocated,
           round(ol.unit_price * (10 ** case
               when list_contains($zero_decimal::varchar[], a.currency) then 0
               when list_contains($three_decimal::varchar[], a.currency) then 3
               else 2 end))::bigint as unit_minor
    from line_status as ls
    join order_lines as ol on ol.order_id = ls.order_id and ol.line_no = ls.line_no
    join authorized as a on a.order_id = ls.order_id
),

per_order as (
    select order_id,
           sum((qty_shipped + case when status = 'cancelled' then 0 else qty_allocated end)
               * unit_minor) as ready_value,
           bool_and(status = 'cancelled' or status = 'shipped'
                    or (status = 'allocated')) as all_stocked,
           bool_and(status = 'cancelled' or status = 'shipped') as all_shipped,
           bool_or(status <> 'cancelled' or qty_shipped > 0) as has_value,
           bool_and(status in ('cancelled', 'not_backorderable') and qty_shipped = 0) as dead,
           bool_or(status not in ('cancelled', 'not_backorderable')) as live
    from lines
    group by order_id
),

earlier as (
    select order_id,
           payment_ref,
           coalesce(sum(amount) filter (where kind = 'capture'), 0) as captured_before,
           count(*) filter (where kind = 'capture') as captures,
           bool_or(kind = 'release' or coalesce(final_capture, true)) as closed
    from payment_requests
    where not preview
    group by order_id, payment_ref
),

facts as (
    select a.*,
           coalesce(e.captured_before, 0) as captured_before,
           coalesce(e.captures, 0) as captures,
           coalesce(e.closed, false) as closed,
           p.dead,
           p.live,
           p.has_value and (case when a.ship_complete then p.all_shipped else p.all_stocked end)
               as complete,
           least(p.ready_value, a.authorized) as target
    from authorized as a
    join per_order as p using (order_id)
    left join earlier as e using (order_id, payment_ref)
    where not coalesce(e.closed, false) and $now::timestamptz < a.expires_at
),

decided as (
    select *,
           case
               when dead or ($multicapture and captures > 0 and not live) then 'release'
               when not $multicapture
                   then case when complete and captures = 0 and target > 0 then 'capture' end
               when complete and target - captured_before > 0 then 'capture'
               when complete and captures > 0 then 'release'
               when not complete and not ship_complete and target - captured_before > 0
                   then 'capture'
           end as kind,
           case when $multicapture then target - captured_before else target end as delta
    from facts
),

requests as (
    select order_id, customer_id, provider, payment_ref, currency, expires_at, kind,
           captured_before,
           case when kind = 'capture' then delta end as amount,
           case when kind = 'capture' and $multicapture then complete end as final_capture
    from decided
    where kind is not null
),

keyed as (
    select *,
           'bo_' || left(sha256(concat_ws(chr(31), 'pay1', provider, payment_ref, order_id, kind,
                                          (captured_before + coalesce(amount, 0))::varchar,
                                          coalesce(final_capture::varchar, ''))), 40) as real_key
    from requests
),

final as (
    select case when $dry_run
                then 'bo_' || left(sha256('preview' || chr(31) || real_key), 40)
                else real_key end as request_key,
           order_id, customer_id, provider, payment_ref, kind, amount, captured_before,
           currency, final_capture, expires_at, $dry_run as preview
    from keyed
)

select f.*
from final as f
anti join payment_requests as r using (request_key)
