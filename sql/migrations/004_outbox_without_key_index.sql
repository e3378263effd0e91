-- 004: the outbox tables lose their primary-key index (an ART index in DuckDB), and their
-- rendered texts are compressed with zstd.
--
-- outbox.message_key and outbox_emails.email_key stay the contract's keys and stay unique:
-- the queue step is their only writer (one writer at a time) and inserts only keys that
-- are not there yet (sql/outbox/new_messages.sql anti-joins the outbox; the email inserts
-- anti-join outbox_emails), and two events never share a key (docs/emails.md).
-- Why: a first run at 10M order lines queues about 4.5M messages; maintaining the index
-- for them cost more at commit than writing the rows, and it must be held in memory.
-- zstd writes the texts faster than the default string compression and keeps them about
-- three times smaller (docs/performance.md, "Queueing emails").
-- DuckDB cannot drop a primary key in place: each table is copied, dropped and renamed, in
-- this migration's transaction. unknown_since (005) is created here if 005 has not run yet,
-- so that the copy keeps it whichever of the two ran first.

alter table outbox add column if not exists unknown_since timestamptz;

create table outbox_004 (
    message_key varchar not null,
    customer_id varchar not null,
    order_id varchar not null,
    kind varchar not null,
    status varchar not null,            -- pending, sending, sent, failed, suppressed
    attempts integer not null default 0,
    provider_message_id varchar,
    last_error varchar,
    created_at timestamptz not null,
    sent_at timestamptz,
    run_id varchar not null,
    to_email varchar not null,
    subject varchar not null,
    body_text varchar using compression zstd not null,
    body_html varchar using compression zstd not null,
    state json not null,                -- what the message told the customer
    email_key varchar,
    failure varchar,
    unknown_since timestamptz
);
insert into outbox_004
select message_key, customer_id, order_id, kind, status, attempts, provider_message_id,
       last_error, created_at, sent_at, run_id, to_email, subject, body_text, body_html, state,
       email_key, failure, unknown_since
from outbox;
drop table outbox;
alter table outbox_004 rename to outbox;

create table outbox_emails_004 (
    email_key varchar not null,         -- = the message_key when it carries one message
    customer_id varchar not null,
    to_email varchar not null,
    to_name varchar,
    subject varchar not null,
    body_text varchar using compression zstd not null,
    body_html varchar using compression zstd not null,
    kinds varchar[] not null,
    message_keys varchar[] not null,
    created_at timestamptz not null
);
insert into outbox_emails_004
select email_key, customer_id, to_email, to_name, subject, body_text, body_html, kinds,
       message_keys, created_at
from outbox_emails;
drop table outbox_emails;
alter table outbox_emails_004 rename to outbox_emails;
