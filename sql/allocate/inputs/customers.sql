-- Fingerprint per customer of what the allocation reads of it: the tier the priority
-- key ranks by. A change reallocates the skus of the customer's orders' lines (kept
-- apart from the orders' fingerprint: joining 5M orders to their customers each run
-- cost more than the rest of that fingerprint).
select customer_key, hash(customer_id, tier) as fp
from customers
