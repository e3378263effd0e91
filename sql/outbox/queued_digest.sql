-- A digest of the messages one run queued (outbox rows of $run_id) and of the emails that
-- carry them: the row count and two sums of 64-bit row hashes over what queueing decided and
-- sending never changes: each message's key, customer, order, kind, the state it tells, its
-- address, its email and, for a suppressed message, why; each email's key, customer,
-- address, kinds and messages. Not the rendered texts (they follow from these and the
-- templates; hashing them would cost more than queueing them), not status, attempts or errors
-- of sending (audited per batch by the send step). Order does not matter, so it is one
-- vectorised pass. The audit log stores it (event messages_queued); `verify-audit` recomputes
-- it. Like the allocation digest, it detects edits; it does not resist a forger with write
-- access (docs/emails.md, "Audit").
with run_messages as (
    select message_key, customer_id, order_id, kind, created_at, to_email,
           state::varchar as state, email_key,
           case when status = 'suppressed' then last_error end as suppressed_because
    from outbox
    where run_id = $run_id
),
rows_ as (
    select hash('m', message_key, customer_id, order_id, kind, created_at, to_email, state,
                email_key, suppressed_because) as h1,
           hash(suppressed_because, email_key, state, to_email, created_at, kind, order_id,
                customer_id, message_key, 'm') as h2
    from run_messages
    union all
    select hash('e', email_key, customer_id, to_email, kinds, message_keys, created_at),
           hash(created_at, message_keys, kinds, to_email, customer_id, email_key, 'e')
    from outbox_emails
    where email_key in (select email_key from run_messages)
),
final as (
    select sha256(concat_ws(':', count(*), coalesce(sum(h1::hugeint), 0),
                            coalesce(sum(h2::hugeint), 0))) as digest,
           (select count(*) from run_messages) as messages,
           (select count(distinct email_key) from run_messages) as emails
    from rows_
)
select * from final
