-- Each open line's place in its sku's order of service (committed lines first, then
-- rank): s_start = open units of the lines served before it, from the running sums
-- of _demand (lid: the line key). A view: read by the hold check and the shares,
-- never stored.
create or replace temp view _placed as
select d.* rename (line_key as lid), k.sid, k.stock_total, k.po_total, k.lines as lines_for_sku,
       k.backorderable, k.max_backorder_qty,
       k.stock_total + k.po_total as usable_qty,
       case when d.committed then d.committed_upto
            else k.committed_total + d.others_upto end - d.qty_open as s_start
from _demand as d
join _sku as k on k.sid = d.sku_key
