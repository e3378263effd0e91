-- The inaccurate counts of the stock basis (the first $limit, by location and sku): what
-- a closed gate names so that a person knows what to recount.
select s.location_id, s.sku, s.as_of, any_value(j.book) as book, s.on_hand as counted
from stock as s
join inventory_accuracy as j
    on j.location_id = s.location_id and j.sku = s.sku and j.as_of = s.as_of
group by s.location_id, s.sku, s.as_of, s.on_hand
having not bool_and(j.accurate)
order by s.location_id, s.sku
limit $limit
