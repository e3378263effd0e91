-- Set-based allocation. Per sku, open lines in priority order occupy consecutive
-- ranges of a demand axis [d_start, d_start + qty_open), usable lots in supply
-- order occupy ranges of a supply axis. Every boundary of either axis cuts the
-- axis into segments; each segment lies in exactly one line and one lot, found by
-- two ASOF joins (linear, whatever the skew of skus). A segment's length is
-- the units that lot gives that line. The pure-Python reference allocator
-- (backorders.domain.allocation) computes the same thing line by line.
create or replace temp table _alloc as
with demand as (
    select order_id, line_no, sku, qty_open,
           sum(qty_open) over (partition by sku order by priority_rank
                               rows between unbounded preceding and current row) - qty_open as d_start
    from demand_lines
),
supply as (
    select sku, supply_kind, supply_ref, qty, available_on,
           sum(qty) over (partition by sku order by supply_kind <> 'stock', available_on, supply_ref
                          rows between unbounded preceding and current row) - qty as s_start
    from supply_lots
    where usable and qty > 0
      and sku in (select sku from demand_lines)
),
limits as (
    select d.sku, least(d.total, s.total) as fill
    from (select sku, sum(qty_open) as total from demand group by sku) as d
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
