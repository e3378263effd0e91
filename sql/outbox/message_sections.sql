-- The sections of the queued messages in render_msgs (one row per message, made by
-- backorders.adapters.outbox.EmailRenderer from outbox, outbox_emails and customers), each
-- rendered as backorders.domain.messages.render does: the kind's template
-- (config/templates/<kind>.toml) filled in with what the message told (kind, condition and
-- promised date from outbox.state), the customer's name as queued (outbox_emails.to_name)
-- and the order's open lines in line_status now. render_emails.sql and
-- render_messages.sql frame them with the layout. Emails are rendered when they are sent and
-- when someone asks (`backorders emails`), not at queueing: a first run at 10M order lines
-- would write ~7 GB of text that sending reads once (docs/performance.md, "Queueing emails").
-- The section_* slots are the kinds' templates compiled by
-- backorders/adapters/message_sql.py (literals bound as parameters). Texts that depend on the
-- locale (dates, line statuses) come from the small temp tables queue_styles,
-- queue_date_texts and queue_line_texts, made by the reference functions. html.escape is
-- per character, so escaping each piece escapes the whole line.
create or replace temp table render_sections as
with open_lines as (
    select l.order_id, l.line_no, l.sku, l.qty_ordered - l.qty_shipped as qty, l.status,
           l.promised_date
    from line_status as l
    where l.status not in ('shipped', 'cancelled')
      and l.order_id in (select order_id from render_msgs)
),
line_stats as (
    select order_id, count(*) as n_lines, min(line_no) as first_line, max(line_no) as last_line
    from open_lines
    group by order_id
),
msg as (
    select r.msg_no, r.message_key, r.order_id, r.kind, r.condition, r.promised_date,
           r.email_key, r.email_size, coalesce(s.n_lines, 0) as n_lines, s.first_line,
           s.last_line, st.style,
           coalesce(nullif(r.to_name, ''), 'customer') as name_text,
           case when contains(r.order_id, '&') or contains(r.order_id, '<')
                     or contains(r.order_id, '>') or contains(r.order_id, '"')
                     or contains(r.order_id, '''')
                then replace(replace(replace(replace(replace(r.order_id, '&', '&amp;'),
                     '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#x27;')
                else r.order_id end as order_html
    from render_msgs as r
    left join line_stats as s using (order_id)
    join queue_styles as st on st.locale is not distinct from r.locale
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
    where p.sku in (select sku from open_lines)
),
lines as (
    select m.msg_no, l.line_no,
           -- an order of up to three lines (most) has its lines in slots 1, 2 and 3;
           -- longer ones (slot 0) are sorted by line_no
           case when m.n_lines > 3 then 0 when l.line_no = m.first_line then 1
                when l.line_no = m.last_line then 3 else 2 end as slot,
           '- ' || l.qty::varchar
           || coalesce(p.head_text, ' x ' || l.sku || ' [' || l.sku || ']: ')
           || t.txt || coalesce(p.tail_text, '') as txt,
           '<li>' || l.qty::varchar
           || coalesce(p.head_html, ' x '
               || replace(replace(replace(replace(replace(l.sku,
                  '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#x27;')
               || ' ['
               || replace(replace(replace(replace(replace(l.sku,
                  '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#x27;')
               || ']: ')
           || t.html || coalesce(p.tail_html, '') || '</li>' as html
    from open_lines as l
    join msg as m using (order_id)
    join queue_line_texts as t
      on t.status = l.status and t.promised_date is not distinct from l.promised_date
     and t.style = m.style
    left join shown_products as p on p.sku = l.sku
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
    -- an order whose lines all shipped or were cancelled since it was queued has no lines
    select m.*, coalesce(ol.lines_text, '') as lines_text, coalesce(ol.lines_html, '') as lines_html,
           d.txt as date_text, d.html as date_html,
           replace(replace(replace(replace(replace(m.name_text,
               '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#x27;')
               as name_html
    from msg as m
    left join order_lines as ol using (msg_no)
    join queue_date_texts as d
      on d.promised_date is not distinct from m.promised_date and d.style = m.style
),
final as (
    select msg_no, message_key, order_id, email_key, email_size, name_text, name_html,
           {{section_subject}} as section_subject,
           {{section_text}} as section_text,
           {{section_html}} as section_html
    from valued
)
select * from final
