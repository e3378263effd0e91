-- per location in the incoming stock file: its good rows against the latest earlier
-- file for that location; a far smaller snapshot looks like a cut-off export
with incoming as (
    select location_id, count(*) as n from _good group by location_id
),
latest_file as (
    select location_id, source_sha256, count(*) as n,
           row_number() over (partition by location_id order by max(as_of) desc, source_sha256) as rk
    from stock_counts
    group by location_id, source_sha256
)
select i.location_id, i.n as incoming_rows, l.n as previous_rows
from incoming as i
join latest_file as l on l.location_id = i.location_id and l.rk = 1
where i.n < $ratio * l.n
order by i.location_id
