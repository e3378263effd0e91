-- This run's new messages into the outbox, each framed alone by the layout
-- (config/templates/_layout.toml) as compose() frames one section: what the outbox row
-- says on its own. Slots: sections is message_sections.sql, frame_* the layout compiled.
insert into outbox (message_key, customer_id, order_id, kind, status, attempts, last_error,
                    created_at, run_id, to_email, subject, body_text, body_html, state,
                    email_key)
select s.message_key, s.customer_id, s.order_id, s.kind, s.status, 0, s.reason,
       $now, $run_id, s.to_email, s.section_subject,
       {{frame_text}}, {{frame_html}}, s.state::json, s.email_key
from ({{sections}}) as s
