-- Fingerprint per sku of the stock counts book stock starts from (book_stock.sql).
select sku, sum(hash(location_id, on_hand, as_of)::hugeint) as fp
from stock
group by sku
