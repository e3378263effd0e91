-- stock rows of unknown skus (a count dated after the run is a bound: feed_rules.bounds_sql)
select t.row_number, 'sku: unknown sku "' || t.sku || '"' as reason
from _valid as t
anti join products as p on p.sku = t.sku
