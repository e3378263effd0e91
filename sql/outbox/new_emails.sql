-- The emails of this run's new messages (queue_new, by rowid): one per customer and status,
-- at most $max_per_email messages each, by order_id; keyed as email_key_for does (the
-- message's key when it travels alone, else 'e' + sha256 of the sorted keys it carries).
-- Mirrors backorders.domain.messages.plan_emails and email_key_for. Only a customer with
-- more than $max_per_email new messages needs them sorted (several emails).
create or replace temp table queue_emails as
with sized as (
    select customer_id, status, count(*) as n
    from queue_new
    group by customer_id, status
),
one_email as (
    select q.rowid as msg_no, q.customer_id, q.status, q.message_key, 0 as email_no
    from queue_new as q
    join sized as s using (customer_id, status)
    where s.n <= $max_per_email
),
several as (
    select q.rowid as msg_no, q.customer_id, q.status, q.message_key,
           (row_number() over (partition by q.customer_id, q.status order by q.order_id) - 1)
               // $max_per_email as email_no
    from queue_new as q
    join sized as s using (customer_id, status)
    where s.n > $max_per_email
),
placed as (
    select * from one_email
    union all
    select * from several
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
