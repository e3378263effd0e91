-- Payment capture when stock is there (issue 15, docs/payments.md).
-- 1. The orders feed's optional payment authorization (docs/feeds.md): a row without
--    them is an order without an authorization, as every order stored before this
--    migration is.
alter table orders add column payment_provider varchar;
alter table orders add column payment_ref varchar;
alter table orders add column payment_amount bigint;
alter table orders add column payment_currency varchar;
alter table orders add column payment_expires_at timestamptz;

-- 2. The payment outbox: one row per request to the provider, keyed by its idempotency
--    key (the Idempotency-Key Stripe gets), hashed from the order, the PaymentIntent, the
--    kind and the amount captured so far: the same event always has the same key, so a
--    rerun, a retry or a crash can only find the row already there. Like `outbox`, no
--    key index: the queue step, the only writer, inserts only keys the table lacks.
create table payment_requests (
    request_key varchar not null,      -- the Idempotency-Key
    order_id varchar not null,
    customer_id varchar not null,
    provider varchar not null,         -- stripe
    payment_ref varchar not null,      -- the PaymentIntent id
    kind varchar not null,             -- capture, release
    amount bigint,                     -- amount_to_capture, smallest currency unit (capture)
    captured_before bigint not null,   -- what earlier captures of this order asked for
    currency varchar not null,
    final_capture boolean,             -- multicapture only: false on all but the last
    expires_at timestamptz not null,   -- the authorization's expiry: never sent after it
    preview boolean not null,          -- a dry run's record: told the provider nothing
    status varchar not null,           -- pending, sending, succeeded, failed, preview
    failure varchar,                   -- transient, permanent, unknown (in doubt)
    attempts integer not null,
    provider_status varchar,           -- the PaymentIntent's status after the request
    provider_request_id varchar,       -- Stripe's Request-Id of the answer
    last_error varchar,
    run_id varchar not null,
    created_at timestamptz not null,
    sent_at timestamptz,
    first_sent_at timestamptz          -- when its first request went out (in-doubt lookups)
);
