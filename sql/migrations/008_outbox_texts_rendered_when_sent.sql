-- 008: the rendered texts of queued emails are no longer stored; they are rendered when the
-- email is sent, and on demand (`backorders emails`, outbox.render_emails/render_messages).
--
-- outbox.subject, outbox.body_text, outbox.body_html
--     null for messages queued from this version on; what a message says is rendered from
--     its row (kind, order_id, state: the condition and promised date it tells), the name
--     as queued (outbox_emails.to_name), the order's open lines in line_status and
--     config/templates (sql/outbox/message_sections.sql). Rows queued before keep their texts.
-- outbox_emails.subject, outbox_emails.body_text, outbox_emails.body_html
--     null for emails queued from this version on: the sender renders them (one set-based
--     statement per chunk of emails) just before their request. An email queued before
--     keeps its texts and is sent (or resent) with exactly them.
--
-- Why: a first run at 10M order lines queued 4.6M messages in 500k emails and wrote about
-- 3.5 GB of text into outbox (each message framed alone) and 3.3 GB into outbox_emails (the
-- same sections joined per customer): most of its 287 s (docs/performance.md, "Queueing
-- emails"). The contract's outbox columns are unchanged; no row or value is lost.
alter table outbox alter column subject drop not null;
alter table outbox alter column body_text drop not null;
alter table outbox alter column body_html drop not null;
alter table outbox_emails alter column subject drop not null;
alter table outbox_emails alter column body_text drop not null;
alter table outbox_emails alter column body_html drop not null;
