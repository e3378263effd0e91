-- Ship-complete orders that the first stock pour (_stock_alloc) does not cover completely: they
-- are held, give back their stock, and wait for all their lines to be covered.
create or replace temp table _held as
select distinct d.order_id
from demand_lines as d
left join (select order_id, line_no, sum(qty) as qty from _stock_alloc group by all) as p
    using (order_id, line_no)
where d.ship_complete and coalesce(p.qty, 0) < d.qty_open
