-- Fingerprint per order of what the allocation reads of it (the priority facts,
-- ship-complete, status, its customer, and whether a closed order is still within the
-- 30 days line_status keeps its lines). A change reallocates the skus of its lines.
-- The customer's tier is fingerprinted per customer (customers.sql).
select o.order_key,
       hash(o.order_id, o.status, o.priority, o.placed_at, o.ship_complete, o.customer_key,
            o.updated_at >= $as_of::timestamptz - interval 30 day) as fp
from orders as o
