-- The emails of this run's new messages (queue_new): one per customer and status, at most
-- $max_per_email messages each, by order_id; keyed as email_key_for does (the message's key
-- when it travels alone, else 'e' + sha256 of the sorted keys it carries), with the message
-- keys in order_id order (the order of its sections) and its kinds. Mirrors
-- backorders.domain.messages.plan_emails and email_key_for. A customer's messages are
-- grouped once; only a customer with more than $max_per_email new messages (split: several
-- emails) has them numbered in order_id order and grouped again.
create or replace temp table queue_emails as
with kind_bits as (
    -- the kinds of an email as bits of one integer ($kinds: every kind, sorted): one more
    -- list per email would cost a third of this statement
    select customer_id, status, order_id, message_key,
           case when list_position($kinds, kind) is null
                then error('no such message kind: ' || kind)
                else 1 << (list_position($kinds, kind) - 1) end as kind_bit
    from queue_new
),
grouped as (
    -- the lists of one group are filled row by row together, so they stay aligned;
    -- list_grade_up gives their order by order_id (an ORDER BY inside list() costs more)
    select customer_id, status, 0 as email_no, count(*) as email_size,
           list(message_key) as key_list, list(order_id) as order_list,
           bit_or(kind_bit) as kind_bits
    from kind_bits
    group by customer_id, status
),
numbered as (
    select q.customer_id, q.status, q.order_id, q.message_key, q.kind_bit,
           (row_number() over (partition by q.customer_id, q.status order by q.order_id) - 1)
               // $max_per_email as email_no
    from kind_bits as q
    semi join (select customer_id, status from grouped where email_size > $max_per_email)
        as g using (customer_id, status)
),
emails as (
    select *, false as split from grouped where email_size <= $max_per_email
    union all
    select customer_id, status, email_no, count(*) as email_size,
           list(message_key) as key_list, list(order_id) as order_list,
           bit_or(kind_bit) as kind_bits, true as split
    from numbered
    group by customer_id, status, email_no
),
final as (
    select customer_id, status, email_no, split, email_size,
           case when email_size = 1 then key_list[1]
                else 'e' || substr(sha256(array_to_string(list_sort(key_list), chr(31))), 1, 31)
           end as email_key,
           list_select(key_list, list_grade_up(order_list)) as message_keys,
           list_filter($kinds, lambda k, i: (kind_bits >> (i - 1)) & 1 = 1) as kinds
    from emails
)
select * from final
