-- This run's new messages (queue_new, with their emails from queue_emails) into the outbox:
-- who, which order, what kind, the state told (outbox.state, what the message is rendered
-- from), status and suppression reason, address and email. No rendered text: since
-- migration 008 the texts are rendered when the email is sent and when someone asks
-- (`backorders emails`), from outbox.state, outbox_emails.to_name, line_status and
-- config/templates (message_sections.sql); writing them here cost most of a first run.
insert into outbox (message_key, customer_id, order_id, kind, status, attempts, last_error,
                    created_at, run_id, to_email, state, email_key)
with carried as (
    -- the email of each message: its customer's (and status's), or for a customer whose
    -- messages were split over several emails, the one that lists it
    select q.*, e.email_key
    from queue_new as q
    join queue_emails as e using (customer_id, status)
    where not e.split
    union all
    select q.*, e.email_key
    from queue_new as q
    join (select unnest(message_keys) as message_key, email_key from queue_emails where split)
        as e using (message_key)
)
select message_key, customer_id, order_id, kind, status, 0, reason, $now, $run_id, to_email,
       state::json, email_key
from carried
