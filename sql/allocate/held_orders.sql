-- Ship-complete orders that stock, poured in the order of service, would not cover
-- completely: they are held, give back their stock, and wait for all their lines
-- to be covered. The first pour in closed form: stock = clamp(T - s_start, 0, q).
create or replace temp table _held as
select distinct order_key
from _placed
where ship_complete and greatest(0, stock_total - s_start) < qty_open
