-- PO lines of unknown skus, or with an ETA implausibly far from the run date
with checked as (
    select t.row_number,
           concat_ws('; ',
               case when p.sku is null then 'sku: unknown sku "' || t.sku || '"' end,
               case when abs(datediff('day', $as_of::timestamptz::date, t.expected_at)) > $max_eta_days
                    then 'expected_at: ' || t.expected_at::varchar || ' is more than ' || $max_eta_days
                         || ' days from the run date ' || $as_of::timestamptz::date::varchar
                         || ' (a typo?)' end
           ) as reason
    from _typed as t
    left join products as p on p.sku = t.sku
    where t._reject_reason is null
)
select row_number, reason from checked where reason <> ''
