-- orders whose customer is unknown (not stored, and not earlier in this file's run)
select t.row_number,
       'customer_id: unknown customer "' || t.customer_id || '"' as reason
from _valid as t
left join customers as c on c.customer_id = t.customer_id
where c.customer_id is null
