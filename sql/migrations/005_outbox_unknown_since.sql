-- 005: unknown outcomes are resolved through SendGrid's Email Activity (docs/emails.md).
--
-- outbox.unknown_since  for status 'failed' with failure 'unknown': when the unknown
--                       outcome was recorded. No request for the message can have left
--                       after it (the process that sent it had stopped, or had given up on
--                       the request), so "not in the activity feed" only counts as "never
--                       accepted" once the feed has had activity_settle_s since this time.
alter table outbox add column if not exists unknown_since timestamptz;

-- Rows already unknown: their request left before now; counting from now is safe.
update outbox set unknown_since = now()
where status = 'failed' and failure = 'unknown' and unknown_since is null;
