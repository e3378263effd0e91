-- 020: the KPIs ops read (docs/kpis.md), as views a data team can query, all as of the
-- last committed run (kpi_run: the latest run whose status starts with 'succeeded').
--
-- purchase_orders.first_expected_at, purchase_orders.first_seen_at
--     the PO line's ETA and updated_at as first stored: the feed's upserts overwrite
--     expected_at, so the supplier's first promise would be lost. Written by the feeds'
--     MERGE when it inserts the key, never updated (feed_rules.merge_sql). Rows stored
--     before this migration get their current values (the earliest still known).
alter table purchase_orders add column if not exists first_expected_at date;
alter table purchase_orders add column if not exists first_seen_at timestamptz;
update purchase_orders
set first_expected_at = expected_at, first_seen_at = updated_at
where first_expected_at is null;

-- the run the KPIs are as of: the last one that committed (succeeded, also with failures)
create view kpi_run as
select run_id, as_of, started_at
from runs
where status like 'succeeded%'
order by started_at desc, run_id desc
limit 1;

-- each line's first promise: its earliest promise_changes row, change 'new' (the run that
-- first allocated it), from runs up to kpi_run; its units from stock are that run's stock rows
-- in allocations
create view kpi_fill_rate as
with k as (
    select * from kpi_run
),
first_change as (
    select pc.order_id, pc.line_no,
           arg_min(pc.run_id, r.started_at) as run_id,
           arg_min(pc.new_status, r.started_at) as first_status
    from promise_changes as pc
    join runs as r using (run_id)
    where pc.change = 'new' and r.started_at <= (select started_at from k)
    group by all
),
first_promise as (
    select f.order_id, f.line_no, f.run_id, f.first_status, ol.qty, r.as_of
    from first_change as f
    join order_lines as ol using (order_id, line_no)
    join runs as r using (run_id)
    where f.first_status not in ('shipped', 'cancelled')
),
shipped_before as (
    select f.order_id, f.line_no, sum(s.qty) as qty
    from first_promise as f
    join shipments as s using (order_id, line_no)
    where s.shipped_at <= f.as_of
    group by all
),
from_stock as (
    select a.order_id, a.line_no, sum(a.qty) as qty
    from allocations as a
    semi join first_promise as f using (run_id, order_id, line_no)
    where a.supply_kind = 'stock'
    group by all
),
lines as (
    select f.first_status,
           greatest(f.qty - coalesce(b.qty, 0), 0) as units,
           coalesce(st.qty, 0) as units_from_stock
    from first_promise as f
    left join shipped_before as b using (order_id, line_no)
    left join from_stock as st using (order_id, line_no)
),
final as (
    select (select run_id from k) as run_id, (select as_of from k) as as_of,
           count(*) as lines,
           count(*) filter (where first_status = 'allocated') as lines_filled,
           round(100.0 * count(*) filter (where first_status = 'allocated')
                 / nullif(count(*), 0), 1) as line_fill_rate_pct,
           coalesce(sum(units), 0)::bigint as units,
           coalesce(sum(units_from_stock), 0)::bigint as units_filled,
           round(100.0 * sum(units_from_stock) / nullif(sum(units), 0), 1) as unit_fill_rate_pct
    from lines
)
select * from final;

-- open backordered lines (some units not from stock) by the age of their order at the
-- as-of date of kpi_run, in fixed buckets; every bucket is listed, empty ones with 0
create view kpi_backorder_aging as
-- the buckets' bounds are written twice: here, and in by_bucket's case (keep them equal)
with buckets (bucket_no, bucket, min_days, max_days) as (
    values (1, '0-7', 0, 7), (2, '8-14', 8, 14), (3, '15-30', 15, 30), (4, '31-60', 31, 60),
           (5, '>60', 61, null)
),
backordered as (
    -- line_results, the table behind line_status, joined on the integer keys: the view
    -- would join on the ids and cost three times as much (1M lines: 0.6 s against 0.2 s)
    select greatest(date_diff('day', o.placed_at::date, k.as_of::date), 0) as age_days,
           lr.qty_promised + lr.qty_unpromised as units,
           lr.qty_unpromised > 0 as unpromised
    from line_results as lr
    join order_lines as ol using (line_key)
    join orders as o on o.order_key = ol.order_key
    cross join kpi_run as k
    where lr.status in ('partially_allocated', 'promised', 'unpromised')
      and lr.qty_promised + lr.qty_unpromised > 0
),
by_bucket as (
    -- the bucket by a case, then an equi-join: a range join of every line with the
    -- buckets cost more than the rest of the view
    select case when age_days <= 7 then 1 when age_days <= 14 then 2
                when age_days <= 30 then 3 when age_days <= 60 then 4 else 5 end as bucket_no,
           count(*) as lines,
           sum(units)::bigint as backordered_units,
           count(*) filter (where unpromised) as unpromised_lines
    from backordered
    group by all
),
final as (
    select b.bucket_no, b.bucket, b.min_days, b.max_days,
           coalesce(x.lines, 0) as lines,
           coalesce(x.backordered_units, 0)::bigint as backordered_units,
           coalesce(x.unpromised_lines, 0) as unpromised_lines
    from buckets as b
    left join by_bucket as x using (bucket_no)
)
select * from final
order by bucket_no;

-- shipped lines against their first promised date: the earliest non-null promised date
-- in promise_changes from a run before the line finished shipping (and up to kpi_run);
-- the ship date is the UTC date of the shipment that completed the line
create view kpi_promise_accuracy as
with k as (
    select * from kpi_run
),
shipped as (
    select s.order_id, s.line_no, max(s.shipped_at) as shipped_at
    from shipments as s
    join order_lines as ol using (order_id, line_no)
    where s.shipped_at <= (select as_of from k)
    group by s.order_id, s.line_no, ol.qty
    having sum(s.qty) >= ol.qty
),
first_promised as (
    select pc.order_id, pc.line_no, arg_min(pc.new_promised_date, r.started_at) as promised_date
    from promise_changes as pc
    join runs as r using (run_id)
    join shipped as s using (order_id, line_no)
    where pc.new_promised_date is not null
      and r.started_at <= (select started_at from k)
      and r.as_of <= s.shipped_at
    group by all
),
measured as (
    select greatest(date_diff('day', f.promised_date, s.shipped_at::date), 0) as days_late
    from shipped as s
    join first_promised as f using (order_id, line_no)
),
final as (
    select (select run_id from k) as run_id, (select as_of from k) as as_of,
           count(*) as shipped_lines,
           count(*) filter (where days_late = 0) as on_time_lines,
           round(100.0 * count(*) filter (where days_late = 0) / nullif(count(*), 0), 1)
               as on_time_pct,
           count(*) filter (where days_late > 0) as late_lines,
           round(avg(days_late) filter (where days_late > 0), 2) as avg_days_late,
           max(days_late) filter (where days_late > 0) as max_days_late
    from measured
)
select * from final;

-- per supplier: received PO lines against their first expected date (on time: received
-- on or before it), the measured lead time (first seen to received, for lines seen
-- before their receipt), and the open lines whose current ETA has passed
create view kpi_supplier_performance as
with k as (
    select * from kpi_run
),
latest_update as (
    select po_id, line_no, arg_max(expected_at, reported_at) as expected_at,
           max(reported_at) as reported_at
    from supplier_updates
    group by all
),
po as (
    select p.supplier_id, p.status, p.received_at,
           coalesce(p.first_expected_at, p.expected_at) as first_expected_at,
           coalesce(p.first_seen_at, p.updated_at) as first_seen_at,
           case when u.reported_at > p.updated_at then u.expected_at else p.expected_at end
               as current_eta
    from purchase_orders as p
    left join latest_update as u using (po_id, line_no)
),
received as (
    select supplier_id,
           greatest(date_diff('day', first_expected_at, received_at::date), 0) as days_late,
           case when first_seen_at < received_at
                then date_diff('day', first_seen_at::date, received_at::date) end as lead_days
    from po
    where status = 'received' and received_at <= (select as_of from k)
),
by_supplier as (
    select supplier_id,
           count(*) as received_lines,
           count(*) filter (where days_late = 0) as on_time_lines,
           round(100.0 * count(*) filter (where days_late = 0) / nullif(count(*), 0), 1)
               as on_time_pct,
           round(avg(days_late) filter (where days_late > 0), 2) as avg_days_late,
           round(avg(lead_days), 2) as avg_lead_time_days,
           count(lead_days) as lead_time_lines
    from received
    group by all
),
open_lines as (
    select supplier_id, count(*) as open_lines,
           count(*) filter (where current_eta < (select as_of from k)::date) as overdue_lines
    from po
    where status = 'open'
    group by all
),
final as (
    select supplier_id,
           coalesce(b.received_lines, 0) as received_lines,
           coalesce(b.on_time_lines, 0) as on_time_lines,
           b.on_time_pct, b.avg_days_late, b.avg_lead_time_days,
           coalesce(b.lead_time_lines, 0) as lead_time_lines,
           coalesce(o.open_lines, 0) as open_lines,
           coalesce(o.overdue_lines, 0) as overdue_lines
    from by_supplier as b
    full join open_lines as o using (supplier_id)
    where exists (select 1 from k)
)
select * from final
order by supplier_id;

-- skus by backordered units (open lines' units not from stock), with the sku's whole
-- open demand (units ordered and not shipped on its open lines), as of line_status
create view kpi_top_backordered_skus as
with open_lines as (
    -- from line_results on the integer keys, as in kpi_backorder_aging
    select ol.sku, lr.qty_ordered - lr.qty_shipped as open_units,
           case when lr.status in ('partially_allocated', 'promised', 'unpromised')
                then lr.qty_promised + lr.qty_unpromised else 0 end as backordered_units,
           case when lr.status in ('partially_allocated', 'promised', 'unpromised')
                then lr.qty_unpromised else 0 end as unpromised_units,
           lr.status in ('partially_allocated', 'promised', 'unpromised')
               and lr.qty_promised + lr.qty_unpromised > 0 as backordered
    from line_results as lr
    join order_lines as ol using (line_key)
    where lr.status not in ('shipped', 'cancelled')
      and exists (select 1 from kpi_run)
),
by_sku as (
    select sku,
           count(*) filter (where backordered) as backordered_lines,
           sum(backordered_units)::bigint as backordered_units,
           sum(unpromised_units)::bigint as unpromised_units,
           sum(open_units)::bigint as open_demand_units
    from open_lines
    group by all
    having sum(backordered_units) > 0
),
final as (
    select row_number() over (order by b.backordered_units desc, b.sku) as rank,
           b.sku, p.name, b.backordered_lines, b.backordered_units, b.unpromised_units,
           b.open_demand_units
    from by_sku as b
    left join products as p using (sku)
)
select * from final
order by rank;
