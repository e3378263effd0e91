-- Ranked demand is no longer stored per run (writing 10M rows cost more than
-- ranking them); `demand_lines` stays queryable as the open lines of the last run,
-- in their rank order, read from line_status.
drop table if exists demand_lines;
create view demand_lines as
select order_id, line_no, sku, customer_id, qty_ordered, qty_shipped,
       qty_ordered - qty_shipped as qty_open, priority_rank, status, run_id
from line_status
where status not in ('shipped', 'cancelled');
