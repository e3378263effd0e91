-- The orders that carry a usable payment authorization, one row each: what the payments
-- queue step and the authorizations report read (docs/payments.md). An order without an
-- expiry lapses `payment_authorization_days` after placed_at: a setting, so the readers
-- apply it (a view takes no parameters).
create view order_authorizations as
select o.order_id,
       o.customer_id,
       o.ship_complete,
       o.placed_at,
       o.payment_provider as provider,
       o.payment_ref,
       o.payment_amount as authorized,
       upper(coalesce(o.payment_currency, o.currency)) as currency,
       o.payment_expires_at
from orders as o
where o.payment_provider is not null
  and o.payment_ref is not null
  and o.payment_amount is not null;
