-- This part's new messages (queue_sections) into the outbox, each framed alone by the layout
-- (config/templates/_layout.toml) as compose() frames one section: what the outbox row
-- says on its own. Slots: frame_text and frame_html, the layout compiled.
insert into outbox (message_key, customer_id, order_id, kind, status, attempts, last_error,
                    created_at, run_id, to_email, subject, body_text, body_html, state,
                    email_key)
select message_key, customer_id, order_id, kind, status, 0, reason, $now, $run_id, to_email,
       section_subject, {{frame_text}}, {{frame_html}}, state::json, email_key
from queue_sections
