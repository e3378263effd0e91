-- Which PO lots each promised line touches: the lot holding its first unit and the
-- lot holding its last, by two ASOF joins on narrow integer rows (a busy sku can have
-- many lots; an equi-join on the sku would multiply them by its lines).
create or replace temp table _po_span as
with po_lines as (
    select lid, sid, acc_before as p_start, acc_before + qty_promised as p_end
    from _lines
    where qty_promised > 0
),
po_lots as (
    select sid, s_start, idx from _lots where supply_kind = 'po'
)
select l.lid, l.sid, l.p_start, l.p_end, f.idx as first_idx, e.idx as last_idx
from po_lines as l
asof join po_lots as f on f.sid = l.sid and l.p_start >= f.s_start
asof join po_lots as e on e.sid = l.sid and l.p_end - 1 >= e.s_start
