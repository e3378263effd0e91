-- The emails of this run's new messages (queue_new): one per customer and status, at most
-- $max_per_email messages each, by order_id; keyed as email_key_for does (the message's key
-- when it travels alone, else 'e' + sha256 of the sorted keys it carries), with the message
-- keys in order_id order (the order of its sections) and its kinds. Mirrors
-- backorders.domain.messages.plan_emails and email_key_for. Only a customer with more than
-- $max_per_email new messages needs them sorted (several emails).
create or replace temp table queue_emails as
with sized as (
    select customer_id, status, count(*) as n
    from queue_new
    group by customer_id, status
),
one_email as (
    select q.customer_id, q.status, q.order_id, q.message_key, q.kind, 0 as email_no
    from queue_new as q
    join sized as s using (customer_id, status)
    where s.n <= $max_per_email
),
several as (
    select q.customer_id, q.status, q.order_id, q.message_key, q.kind,
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
    -- the lists of one group are filled row by row together, so they stay aligned;
    -- list_grade_up gives their order by order_id (an ORDER BY inside list() costs more)
    select customer_id, status, email_no, count(*) as email_size,
           list(message_key) as key_list, list(order_id) as order_list,
           list_sort(list_distinct(list(kind))) as kinds
    from placed
    group by customer_id, status, email_no
),
final as (
    select customer_id, status, email_no, email_size,
           case when email_size = 1 then key_list[1]
                else 'e' || substr(sha256(array_to_string(list_sort(key_list), chr(31))), 1, 31)
           end as email_key,
           list_select(key_list, list_grade_up(order_list)) as message_keys,
           kinds
    from emails
)
select * from final
