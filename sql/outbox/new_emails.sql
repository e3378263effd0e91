-- The emails of this run's new messages (queue_new, by rowid): one per customer and status,
-- at most $max_per_email messages each, by order_id; keyed as email_key_for does (the
-- message's key when it travels alone, else 'e' + sha256 of the sorted keys it carries).
-- Mirrors backorders.domain.messages.plan_emails and email_key_for.
create or replace temp table queue_emails as
with placed as (
    select rowid as msg_no, customer_id, status, message_key,
           (row_number() over (partition by customer_id, status order by order_id) - 1)
               // $max_per_email as email_no
    from queue_new
),
emails as (
    select customer_id, status, email_no, count(*) as email_size,
           case when count(*) = 1 then any_value(message_key)
                else 'e' || substr(sha256(array_to_string(list_sort(list(message_key)), chr(31))),
                                   1, 31) end as email_key
    from placed
    group by customer_id, status, email_no
),
final as (
    select p.msg_no, e.email_key, e.email_size
    from placed as p
    join emails as e using (customer_id, status, email_no)
)
select * from final
