-- 002: one email can carry several outbox messages (one customer, several orders, one run),
-- and a failed message says whether it may be retried.
--
-- outbox.email_key   the email (outbox_emails) that carries this message; the messages of
--                    one email always share their status
-- outbox.failure     for status 'failed': 'transient' (429/5xx/not connected until the
--                    attempts ran out; SendGrid did not accept it; the next send pass
--                    retries it), 'permanent' (a 4xx or a bad message; never retried),
--                    'unknown' (the request may have reached SendGrid; never resent
--                    automatically: a person checks SendGrid's activity by message_key)
alter table outbox add column if not exists email_key varchar;
alter table outbox add column if not exists failure varchar;

create table if not exists outbox_emails (
    email_key varchar primary key,      -- = the message_key when it carries one message
    customer_id varchar not null,
    to_email varchar not null,
    to_name varchar,
    subject varchar not null,
    body_text varchar not null,
    body_html varchar not null,
    kinds varchar[] not null,
    message_keys varchar[] not null,
    created_at timestamptz not null
);

insert into outbox_emails
select o.message_key, o.customer_id, o.to_email, c.name, o.subject, o.body_text, o.body_html,
       [o.kind], [o.message_key], o.created_at
from outbox as o
left join customers as c using (customer_id)
where o.email_key is null;

update outbox set email_key = message_key where email_key is null;

update outbox
set failure = case when last_error like 'outcome unknown%' then 'unknown' else 'permanent' end
where status = 'failed' and failure is null;
