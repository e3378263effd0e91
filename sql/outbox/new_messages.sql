-- The messages this run's changes deserve and the outbox does not have yet: one per order,
-- with its key and its status (the emails come in new_emails.sql; the texts are rendered
-- from the state when sent, message_sections.sql). One set-based pass that mirrors the pure reference in
-- backorders.domain.messages: order_state (condition, date), choose_message (kind, with
-- $delay_apology_days and $max_wait_days, null: never), message_key (sha256 of the
-- customer, order, kind and canonical state JSON); is_deliverable_address and the
-- suppression reasons of backorders.adapters.outbox.
-- tests/integration/test_outbox_sql.py checks it against them on random worlds.
-- Derived from line_status against the outbox, so it is crash-safe: if a run dies after
-- allocating and before queueing, the next run finds the same messages again.
create or replace temp table queue_new as
with open_lines as (
    select order_id, customer_id, status, promised_date
    from line_status
    where status not in ('shipped', 'cancelled')
),
per_order as (
    select order_id,
           any_value(customer_id) as customer_id,
           case when bool_or(status = 'not_backorderable') then 'not_backorderable'
                when bool_or(status in ('promised', 'unpromised', 'partially_allocated'))
                    then 'backordered'
                when bool_and(status = 'allocated') then 'ready'
                else 'closed' end as condition,
           -- the order's date: its latest backordered line's, none if any of them has none
           bool_or(status in ('promised', 'unpromised', 'partially_allocated')
                   and promised_date is null) as undated,
           max(promised_date) filter (
               where status in ('promised', 'unpromised', 'partially_allocated')) as latest
    from open_lines
    group by order_id
),
state_now as (
    select order_id, customer_id, condition,
           case when condition = 'backordered' and not undated then latest end as promised_date
    from per_order
),
told as (
    -- what the outbox told each order: the last state, the first date, apology, offer
    select order_id,
           arg_max(state::varchar, (created_at, message_key)) as last_state,
           arg_min(state::varchar, (created_at, message_key)) filter (
               where json_extract_string(state, '$.promised_date') is not null) as first_dated,
           bool_or(kind = 'delay_apology') as apologized,
           bool_or(kind = 'cancellation_offer') as offered
    from outbox
    -- a dry run's rows are previews: they told nobody anything (docs/emails.md)
    where not (status = 'suppressed' and coalesce(starts_with(last_error, 'dry run:'), false))
    group by order_id
),
history as (
    select order_id,
           json_extract_string(last_state, '$.condition') as prev_condition,
           json_extract_string(last_state, '$.promised_date')::date as prev_date,
           json_extract_string(first_dated, '$.promised_date')::date as first_date,
           apologized, offered
    from told
),
chosen as (
    select s.order_id, s.customer_id, s.condition, s.promised_date,
           case
               when s.condition = 'not_backorderable' then
                   case when h.prev_condition is distinct from 'not_backorderable'
                        then 'cancellation_offer' end
               when s.condition = 'backordered' then
                   case when $max_wait_days is not null
                             and not coalesce(h.offered, false)
                             and o.placed_at is not null
                             and date_diff('day', o.placed_at::date,
                                           coalesce(s.promised_date, $today::date))
                                 > $max_wait_days
                            then 'cancellation_offer'
                        when h.prev_condition is distinct from 'backordered'
                            then 'backorder_confirmed'
                        when h.prev_date is distinct from s.promised_date then
                            case when $delay_apology_days is not null
                                      and not coalesce(h.apologized, false)
                                      and h.first_date is not null
                                      and date_diff('day', h.first_date,
                                                    coalesce(s.promised_date, $today::date))
                                          >= $delay_apology_days
                                 then 'delay_apology'
                                 else 'promise_changed' end
                   end
               when s.condition = 'ready' and h.prev_condition = 'backordered'
                   then 'ready_to_ship'
           end as kind
    from state_now as s
    join orders as o using (order_id)
    left join history as h using (order_id)
),
stated as (
    -- the state told, as OrderState.to_json writes it
    select *,
           '{"condition": "' || condition || '", "promised_date": '
           || coalesce('"' || strftime(promised_date, '%Y-%m-%d') || '"', 'null') || '}' as state
    from chosen
    where kind is not null
),
keyed as (
    select *,
           substr(sha256(concat_ws(chr(31), customer_id, order_id, kind, state)), 1, 32)
               as real_key
    from stated
),
addressed as (
    -- is_deliverable_address (backorders.domain.email); $bad_address_chars is the class
    -- of characters it refuses (whitespace, control and format characters, , ; < > ...)
    select cu.customer_id, cu.email_opt_in, cu.email,
           length(cu.email) between 1 and 254
           and not regexp_matches(cu.email, $bad_address_chars)
           and length(cu.email) - length(replace(cu.email, '@', '')) = 1
           and length(split_part(cu.email, '@', 1)) between 1 and 64
           and length(split_part(cu.email, '@', 2)) between 1 and 253
           and contains(split_part(cu.email, '@', 2), '.')
           and not regexp_matches(split_part(cu.email, '@', 2), '(^|\.)(-|\.|$)|-(\.|$)')
           and length(regexp_extract(split_part(cu.email, '@', 2), '[^.]*$')) >= 2
               as deliverable
    from customers as cu
    where cu.customer_id in (select customer_id from keyed)
),
suppressed as (
    select f.real_key, f.customer_id, f.order_id, f.kind, f.condition, f.promised_date,
           f.state, a.email as to_email,
           case when not coalesce(a.email_opt_in, false)
                    then 'customer opted out of email (email_opt_in=false)'
                when not a.deliverable then 'not a deliverable email address'
                when $dry_run then 'dry run: recorded, not sent (`backorders emails` renders it)'
           end as reason
    from keyed as f
    join addressed as a using (customer_id)
),
previewed as (
    -- a dry run's message is a preview with a key of its own (preview_key), so that it
    -- never blocks the real message of a later real run; a second dry run finds it there
    select * exclude (real_key),
           case when starts_with(reason, 'dry run:')
                then substr(sha256(concat_ws(chr(31), 'preview', real_key)), 1, 32)
                else real_key end as message_key
    from suppressed
),
fresh as (
    select * from previewed anti join outbox using (message_key)
),
final as (
    select *, case when reason is null then 'pending' else 'suppressed' end as status
    from fresh
)
select * from final
