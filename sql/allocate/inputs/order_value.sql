-- Each order's value (what the order_value priority reads: its lines that are not
-- cancelled). {where} is empty for every order, or limits it to the orders with a line
-- on a sku whose lines changed (allocation_plan: the only orders whose value can have
-- changed; a line deleted outright is caught by the total).
select order_key,
       coalesce(sum(qty * unit_price) filter (where status <> 'cancelled'), 0)::decimal(38, 2)
           as order_value
from order_lines
{where}
group by order_key
