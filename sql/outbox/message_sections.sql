-- This run's new messages of one part of the customers (hash(customer_id) % $parts =
-- $part), each rendered as its section: the kind's template (config/templates/<kind>.toml)
-- filled in as backorders.domain.messages.render does, with the values the layout frames it
-- with. insert_messages.sql, insert_single_emails.sql and insert_emails.sql read it; one
-- part at a time keeps the texts of a 10M-line run within memory. The section_* slots are
-- the kinds' templates compiled by backorders/adapters/message_sql.py (literals bound as
-- parameters). Texts that depend on the locale (dates, line statuses) come from the small
-- temp tables queue_styles, queue_date_texts and queue_line_texts, made by the reference
-- functions. html.escape is per character, so escaping each piece escapes the whole line.
create or replace temp table queue_sections as
with msg as (
    select q.rowid as msg_no, q.message_key, q.customer_id, q.order_id, q.kind, q.status,
           q.reason, q.condition, q.promised_date, q.state, q.n_lines, q.first_line,
           q.last_line, e.email_key, e.email_size, cu.email as to_email, cu.name as to_name,
           st.style,
           coalesce(nullif(cu.name, ''), 'customer') as name_text,
           case when contains(q.order_id, '&') or contains(q.order_id, '<')
                     or contains(q.order_id, '>') or contains(q.order_id, '"')
                     or contains(q.order_id, '''')
                then replace(replace(replace(replace(replace(q.order_id, '&', '&amp;'),
                     '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#x27;')
                else q.order_id end as order_html
    from queue_new as q
    join queue_emails as e on e.msg_no = q.rowid
    join customers as cu on cu.customer_id = q.customer_id
    join queue_styles as st on st.locale is not distinct from cu.locale
    where hash(q.customer_id) % $parts = $part
),
in_stock as (
    select sku from supply_lots where supply_kind = 'stock' group by sku having sum(qty) > 0
),
substitutes as (
    -- a product's substitutes that have usable stock now, by sku, the first five shown
    select p.sku, array_to_string(list_slice(list_sort(list(u.sub)), 1, 5), ', ') as shown
    from products as p, unnest(p.substitute_skus) as u(sub)
    where u.sub in (select sku from in_stock)
    group by p.sku
),
shown_products as (
    -- "<qty>| x <name> [<sku>]: |<status>| (alternatives in stock: ...)|", text and html
    select p.sku,
           ' x ' || coalesce(p.name, p.sku) || ' [' || p.sku || ']: ' as head_text,
           ' x ' || replace(replace(replace(replace(replace(coalesce(p.name, p.sku),
               '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#x27;')
           || ' [' || replace(replace(replace(replace(replace(p.sku,
               '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#x27;')
           || ']: ' as head_html,
           coalesce(' (alternatives in stock: ' || s.shown || ')', '') as tail_text,
           coalesce(' (alternatives in stock: '
                    || replace(replace(replace(replace(replace(s.shown,
                       '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#x27;')
                    || ')', '') as tail_html
    from products as p
    left join substitutes as s using (sku)
),
lines as (
    select m.msg_no, l.line_no,
           -- an order of up to three lines (most) has its lines in slots 1, 2 and 3;
           -- longer ones (slot 0) are sorted by line_no
           case when m.n_lines > 3 then 0 when l.line_no = m.first_line then 1
                when l.line_no = m.last_line then 3 else 2 end as slot,
           '- ' || (l.qty_ordered - l.qty_shipped)::varchar
           || coalesce(p.head_text, ' x ' || l.sku || ' [' || l.sku || ']: ')
           || t.txt || coalesce(p.tail_text, '') as txt,
           '<li>' || (l.qty_ordered - l.qty_shipped)::varchar
           || coalesce(p.head_html, ' x '
               || replace(replace(replace(replace(replace(l.sku,
                  '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#x27;')
               || ' ['
               || replace(replace(replace(replace(replace(l.sku,
                  '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#x27;')
               || ']: ')
           || t.html || coalesce(p.tail_html, '') || '</li>' as html
    from line_status as l
    join msg as m using (order_id)
    join queue_line_texts as t
      on t.status = l.status and t.promised_date is not distinct from l.promised_date
     and t.style = m.style
    left join shown_products as p on p.sku = l.sku
    where l.status not in ('shipped', 'cancelled')
      and hash(l.customer_id) % $parts = $part
),
order_lines as (
    -- in line_no order: string_agg of one row per slot needs no sort
    select msg_no,
           case when min(slot) > 0
                then concat_ws(chr(10), string_agg(txt, '') filter (where slot = 1),
                               string_agg(txt, '') filter (where slot = 2),
                               string_agg(txt, '') filter (where slot = 3))
                else array_to_string(list_transform(
                         list_sort(list({'line_no': line_no, 'txt': txt}) filter (where slot = 0)),
                         lambda x: x.txt), chr(10))
           end as lines_text,
           case when min(slot) > 0
                then concat(string_agg(html, '') filter (where slot = 1),
                            string_agg(html, '') filter (where slot = 2),
                            string_agg(html, '') filter (where slot = 3))
                else array_to_string(list_transform(
                         list_sort(list({'line_no': line_no, 'html': html}) filter (where slot = 0)),
                         lambda x: x.html), '')
           end as lines_html
    from lines
    group by msg_no
),
valued as (
    select m.*, ol.lines_text, ol.lines_html, d.txt as date_text, d.html as date_html,
           replace(replace(replace(replace(replace(m.name_text,
               '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#x27;')
               as name_html
    from msg as m
    join order_lines as ol using (msg_no)
    join queue_date_texts as d
      on d.promised_date is not distinct from m.promised_date and d.style = m.style
),
final as (
    select message_key, customer_id, order_id, kind, status, reason, state, to_email, to_name,
           email_key, email_size, name_text, name_html,
           {{section_subject}} as section_subject,
           {{section_text}} as section_text,
           {{section_html}} as section_html
    from valued
)
select * from final
