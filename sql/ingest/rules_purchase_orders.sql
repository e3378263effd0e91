-- PO lines of unknown skus, or with an ETA implausibly far from the run date
select t.row_number,
       concat_ws('; ',
           case when p.sku is null then 'sku: unknown sku "' || t.sku || '"' end,
           case when abs(datediff('day', $as_of::timestamptz::date, t.expected_at)) > $max_eta_days
                then 'expected_at: ' || t.expected_at::varchar || ' is more than ' || $max_eta_days
                     || ' days from the run date ' || $as_of::timestamptz::date::varchar
                     || ' (a typo?)' end
       ) as reason
from _valid as t
left join products as p on p.sku = t.sku
where p.sku is null or abs(datediff('day', $as_of::timestamptz::date, t.expected_at)) > $max_eta_days
