-- This run's new messages (queue_new, with their emails from queue_emails) into the outbox:
-- who, which order, what kind, the state told (outbox.state, what the message is rendered
-- from), status and suppression reason, address and email. No rendered text: since
-- migration 008 the texts are rendered when the email is sent and when someone asks
-- (`backorders emails`), from outbox.state, outbox_emails.to_name, line_status and
-- config/templates (message_sections.sql); writing them here cost most of a first run.
insert into outbox (message_key, customer_id, order_id, kind, status, attempts, last_error,
                    created_at, run_id, to_email, state, email_key)
with carried as (
    select unnest(message_keys) as message_key, email_key
    from queue_emails
)
select q.message_key, q.customer_id, q.order_id, q.kind, q.status, 0, q.reason, $now, $run_id,
       q.to_email, q.state::json, e.email_key
from queue_new as q
join carried as e using (message_key)
