-- Pour supply into demand, per sku, both in a given order: each need takes what is
-- left. Needs occupy consecutive ranges of a demand axis [d_start, d_start + qty),
-- lots of a supply axis; every boundary of either axis cuts it into segments, each
-- inside exactly one need and one lot, found by two ASOF joins: linear, whatever
-- the skew of skus. Reads the temp views _pour_demand(sku, order_id, line_no, qty,
-- ord) and _pour_supply(sku, supply_kind, supply_ref, qty, available_on, ord).
-- The reference allocator (backorders.domain.allocation._pour) does the same by loop.
create or replace temp table _poured as
with demand as (
    select sku, order_id, line_no, qty,
           sum(qty) over (partition by sku order by ord
                          rows between unbounded preceding and current row) - qty as d_start
    from _pour_demand
    where qty > 0
),
supply as (
    select sku, supply_kind, supply_ref, qty, available_on,
           sum(qty) over (partition by sku order by ord
                          rows between unbounded preceding and current row) - qty as s_start
    from _pour_supply
    where qty > 0 and sku in (select sku from demand)
),
limits as (
    select d.sku, least(d.total, s.total) as fill
    from (select sku, sum(qty) as total from demand group by sku) as d
    join (select sku, sum(qty) as total from supply group by sku) as s using (sku)
),
cuts as (
    select sku, d_start as pos from demand
    union
    select sku, s_start as pos from supply
    union
    select sku, fill as pos from limits
),
segments as (
    select c.sku, c.pos, lead(c.pos) over (partition by c.sku order by c.pos) as next_pos
    from cuts as c
    join limits as l using (sku)
    where c.pos <= l.fill
),
final as (
    select d.order_id, d.line_no, g.sku, s.supply_kind, s.supply_ref,
           g.next_pos - g.pos as qty, s.available_on
    from segments as g
    asof join demand as d on d.sku = g.sku and g.pos >= d.d_start
    asof join supply as s on s.sku = g.sku and g.pos >= s.s_start
    where g.next_pos is not null and g.next_pos > g.pos
)
select * from final
