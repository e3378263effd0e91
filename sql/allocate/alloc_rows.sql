-- The allocation rows: which lots each line draws, and how much of each. A line
-- occupies [s2, s2 + qty_allocated) on its sku's stock axis and
-- [acc_before, acc_before + qty_promised) on its PO axis and draws every lot that
-- overlaps. Stock lots are few per sku (one per location): an equi-join on the sku.
-- PO lots: _po_span (po_span.sql) has the first and the last lot each line touches;
-- the lots between are listed. is_last marks the lot that completes the line (its
-- date is the line's supply date).
create or replace temp table _alloc as
with stock_rows as (
    select l.lid, l.sid, s.supply_kind, s.supply_ref,
           least(l.s2 + l.qty_allocated, s.s_start + s.qty) - greatest(l.s2, s.s_start) as qty,
           s.available_on,
           l.qty_promised = 0 and l.s2 + l.qty_allocated <= s.s_start + s.qty as is_last
    from _lines as l
    join _lots as s
        on s.sid = l.sid and s.supply_kind = 'stock'
       and s.s_start < l.s2 + l.qty_allocated and s.s_start + s.qty > l.s2
    where l.qty_allocated > 0
),
po_rows as (
    select l.lid, l.sid, p.supply_kind, p.supply_ref,
           least(s.p_end, p.s_start + p.qty) - greatest(s.p_start, p.s_start) as qty,
           p.available_on, s.idx = s.last_idx as is_last
    from (select *, unnest(range(first_idx, last_idx + 1)) as idx from _po_span) as s
    join _lots as p on p.sid = s.sid and p.supply_kind = 'po' and p.idx = s.idx
    join _lines as l on l.lid = s.lid
)
select * from stock_rows
union all
select * from po_rows
