-- Fingerprint per order of what the allocation reads of it and its customer (the
-- priority facts, ship-complete, status, and whether a closed order is still within
-- the 30 days line_status keeps its lines). A change reallocates the skus of its lines.
select o.order_key,
       hash(o.order_id, o.status, o.priority, o.placed_at, o.ship_complete, o.customer_key,
            c.tier, o.updated_at >= $as_of::timestamptz - interval 30 day) as fp
from orders as o
left join customers as c on c.customer_key = o.customer_key
