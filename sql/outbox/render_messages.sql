-- Each message of render_sections (message_sections.sql) framed alone by the layout
-- (config/templates/_layout.toml), as compose() frames one section: what the message says
-- on its own (an email that carries only this message says exactly this). Slots: the layout
-- compiled (backorders/adapters/message_sql.py).
select message_key, section_subject as subject, {{single_text}} as body_text,
       {{single_html}} as body_html
from render_sections
