-- This run's line statuses against the previous run's: what changed for each line
-- ({new}: line_results_next, or _results_new in an incremental run, against
-- line_results, the table behind the line_status view),
-- compared on the line key; the order id and line number are read for the changed
-- lines only.
insert into promise_changes
with compared as (
    select n.line_key,
           o.status::varchar as old_status, n.status::varchar as new_status,
           o.promised_date as old_promised_date, n.promised_date as new_promised_date,
           case
               when o.line_key is null then 'new'
               when n.status = 'allocated' and o.status <> 'allocated' then 'now_allocated'
               when n.promised_date is null and o.promised_date is not null
                    and n.status not in ('allocated', 'shipped', 'cancelled') then 'now_unpromised'
               when n.promised_date > o.promised_date then 'later'
               when n.promised_date < o.promised_date then 'earlier'
               when n.status <> o.status then 'status'
           end as change
    from {new} as n
    left join line_results as o using (line_key)
)
select $run_id, ol.order_id, ol.line_no, c.change, c.old_status, c.new_status,
       c.old_promised_date, c.new_promised_date
from compared as c
join order_lines as ol using (line_key)
where c.change is not null
