-- orders whose customer is unknown (not stored, and not earlier in this file's run), and
-- payment authorizations that do not hold together (docs/feeds.md, docs/payments.md)
with checked as (
    select t.row_number,
           c.customer_id is null as unknown_customer,
           t.customer_id,
           t.payment_provider,
           t.payment_ref,
           t.payment_amount,
           t.payment_currency,
           t.currency,
           t.payment_expires_at
    from _valid as t
    left join customers as c on c.customer_id = t.customer_id
),

reasons as (
    select row_number,
           case when unknown_customer
                then 'customer_id: unknown customer "' || customer_id || '"' end as r1,
           case when payment_provider is null
                     and (payment_ref is not null or payment_amount is not null
                          or payment_currency is not null or payment_expires_at is not null)
                then 'payment_provider: required with payment_ref, payment_amount, '
                     || 'payment_currency or payment_expires_at (an authorization names its provider)'
           end as r2,
           case when payment_provider is not null and payment_ref is null
                then 'payment_ref: required with payment_provider (the PaymentIntent id, pi_...)'
                when payment_provider = 'stripe'
                     and not regexp_full_match(payment_ref, 'pi_[A-Za-z0-9_]{1,250}')
                then 'payment_ref: "' || left(payment_ref, 60)
                     || '" is not a Stripe PaymentIntent id (pi_ and letters, digits, _)'
           end as r3,
           case when payment_provider is not null and payment_amount is null
                then 'payment_amount: required with payment_provider (the amount authorized, '
                     || 'in the smallest currency unit)'
           end as r4,
           case when payment_currency is not null
                     and not regexp_full_match(payment_currency, '[A-Za-z]{3}')
                then 'payment_currency: "' || left(payment_currency, 60)
                     || '" is not a three-letter ISO currency code'
                when payment_currency is not null and upper(payment_currency) <> upper(currency)
                then 'payment_currency: "' || payment_currency
                     || '" differs from the order''s currency "' || currency
                     || '" (lines are priced in the order''s currency)'
           end as r5
    from checked
),

final as (
    select row_number, concat_ws('; ', r1, r2, r3, r4, r5) as reason
    from reasons
    where coalesce(r1, r2, r3, r4, r5) is not null
)

select * from final
