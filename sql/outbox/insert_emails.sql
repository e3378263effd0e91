-- This run's new emails (queue_emails, new_emails.sql) into outbox_emails: one per customer
-- and status (at most max_per_email messages), with the address and name as queued, the
-- kinds, and the message keys in order_id order (the order of its sections). No rendered
-- text (migration 008): render_emails.sql makes the subject and bodies when it is sent.
insert into outbox_emails (email_key, customer_id, to_email, to_name, kinds, message_keys,
                           created_at)
select e.email_key, e.customer_id, cu.email, cu.name, e.kinds, e.message_keys, $now
from queue_emails as e
join customers as cu using (customer_id)
anti join outbox_emails as o using (email_key)
