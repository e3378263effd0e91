-- For each line of a sku with held lines: is it held, and how many open units of
-- held lines are served before it (they leave the stock axis). One ASOF join on
-- the sku's held lines, which are few; lines of other skus are not touched.
create or replace temp table _held_before as
with placed as (
    select lid, order_key, sid, qty_open, s_start
    from _placed
    where sid in (select sid from _placed semi join _held using (order_key))
),
held_lines as (
    select sid, s_start, sum(qty_open) over (partition by sid order by s_start)::bigint as held_upto
    from placed
    semi join _held using (order_key)
)
select p.lid, h2.order_key is not null as held, coalesce(h.held_upto, 0) as held_before
from placed as p
asof left join held_lines as h on h.sid = p.sid and p.s_start > h.s_start
left join _held as h2 on h2.order_key = p.order_key
