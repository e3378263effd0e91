-- This run's emails that carry one message: compose() of one section is that message
-- framed alone, which is what its outbox row already holds (insert_messages.sql), so the
-- email copies it.
insert into outbox_emails (email_key, customer_id, to_email, to_name, subject, body_text,
                           body_html, kinds, message_keys, created_at)
with singles as (
    select q.message_key, q.to_name
    from queue_new as q
    join queue_emails as e on e.msg_no = q.rowid
    where e.email_size = 1
),
final as (
    select o.email_key, o.customer_id, o.to_email, s.to_name, o.subject, o.body_text,
           o.body_html, [o.kind] as kinds, [o.message_key] as message_keys,
           $now as created_at
    from outbox as o
    join singles as s using (message_key)
    anti join outbox_emails as e using (email_key)
)
select * from final
