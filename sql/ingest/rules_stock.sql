-- stock rows of unknown skus, and counts dated in the future
select t.row_number,
       concat_ws('; ',
           case when p.sku is null then 'sku: unknown sku "' || t.sku || '"' end,
           case when t.as_of > $as_of::timestamptz + interval 1 day
                then 'as_of: ' || t.as_of::varchar || ' is in the future of the run (' || $as_of::timestamptz::varchar || ')' end
       ) as reason
from _valid as t
left join products as p on p.sku = t.sku
where p.sku is null or t.as_of > $as_of::timestamptz + interval 1 day
