-- Usable supply of the skus with demand, per sku and kind in the order it is drawn
-- (stock by location, POs by ETA then reference), each lot placed on its own axis:
-- [s_start, s_start + qty). idx numbers the lots 1, 2, ... so that a line spanning
-- several lots can list them.
create or replace temp table _lots as
select k.sid, s.sku, s.supply_kind, s.supply_ref, s.qty, s.available_on,
       row_number() over w as idx,
       (sum(s.qty) over w - s.qty)::bigint as s_start
from supply_lots as s
join _sku as k using (sku)
where s.usable and s.qty > 0
window w as (partition by k.sid, s.supply_kind order by s.available_on, s.supply_ref)
