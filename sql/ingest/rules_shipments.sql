-- shipments of unknown order lines, of another sku than the line's, or that would ship
-- more than the line ordered (its stored shipments, then this file's in shipped_at
-- order: the rows past the ordered quantity are quarantined, the earlier ones load)
with incoming as (
    select t.row_number, t.shipment_id, t.order_id, t.line_no, t.sku, t.qty, t.shipped_at,
           ol.order_id is not null as known, ol.sku as line_sku, ol.qty as qty_ordered
    from _valid as t
    left join order_lines as ol on ol.order_id = t.order_id and ol.line_no = t.line_no
),
matching as (
    select * from incoming where known and sku = line_sku
),
stored as (
    -- shipments already stored for these lines, except those this file restates (by key)
    select s.order_id, s.line_no, sum(s.qty) as qty
    from shipments as s
    semi join matching as i on i.order_id = s.order_id and i.line_no = s.line_no
    anti join _valid as v
        on v.shipment_id = s.shipment_id and v.order_id = s.order_id and v.line_no = s.line_no
    group by all
),
over_lines as (
    -- the lines this file would over-ship (a hash aggregate; usually none)
    select m.order_id, m.line_no, coalesce(any_value(st.qty), 0) as qty_stored
    from matching as m
    left join stored as st using (order_id, line_no)
    group by m.order_id, m.line_no
    having coalesce(any_value(st.qty), 0) + sum(m.qty) > any_value(m.qty_ordered)
),
running as (
    -- only their rows are put in shipped_at order
    select m.*, o.qty_stored,
           o.qty_stored + sum(m.qty) over (
               partition by m.order_id, m.line_no
               order by m.shipped_at, m.shipment_id, m.row_number
               rows between unbounded preceding and current row) as qty_shipped_total
    from matching as m
    join over_lines as o using (order_id, line_no)
),
over_shipped as (
    select row_number,
           'qty: ' || qty || ' would bring order line ' || order_id || ':' || line_no
           || ' to ' || qty_shipped_total || ' units shipped, more than the '
           || qty_ordered || ' it ordered (' || qty_stored
           || ' stored before this file; rule: a line ships at most what it ordered): '
           || 'an over-shipment, or the line''s quantity is out of date' as reason
    from running
    where qty_shipped_total > qty_ordered
)
select row_number,
       concat_ws('; ',
           case when not known
                then 'order_id/line_no: unknown order line "' || order_id || ':' || line_no || '"' end,
           case when known and line_sku <> sku
                then 'sku: "' || sku || '" is not the sku of order line ' || order_id || ':'
                     || line_no || ' ("' || line_sku || '")' end
       ) as reason
from incoming
where not known or line_sku <> sku
union all
select row_number, reason from over_shipped
