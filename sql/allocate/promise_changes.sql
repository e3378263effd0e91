-- This run's line statuses against the previous run's: what changed for each line
-- (line_results_next against line_results, the table behind the line_status view).
insert into promise_changes
with compared as (
    select n.order_id, n.line_no,
           o.status::varchar as old_status, n.status::varchar as new_status,
           o.promised_date as old_promised_date, n.promised_date as new_promised_date,
           case
               when o.order_id is null then 'new'
               when n.status = 'allocated' and o.status <> 'allocated' then 'now_allocated'
               when n.promised_date is null and o.promised_date is not null
                    and n.status not in ('allocated', 'shipped', 'cancelled') then 'now_unpromised'
               when n.promised_date > o.promised_date then 'later'
               when n.promised_date < o.promised_date then 'earlier'
               when n.status <> o.status then 'status'
           end as change
    from line_results_next as n
    left join line_results as o using (order_id, line_no)
)
select $run_id, order_id, line_no, change, old_status, new_status, old_promised_date,
       new_promised_date
from compared
where change is not null
