-- The access log keeps a failed query's error text with its literals masked, as it keeps the
-- query: the raw text arrives in the EPHEMERAL `exception_text` and only the engine's
-- normalizeQuery of it (quoted strings and numbers become ?, and so does everything after an
-- unclosed quote, where a syntax error echoes the query) is stored in `exception`. Analysts
-- read query_log: no other user's literal may reach them through it. Rows written before are
-- masked the same way.
ALTER TABLE query_log ADD COLUMN IF NOT EXISTS exception_text String EPHEMERAL '' AFTER exception_code;
ALTER TABLE query_log MODIFY COLUMN exception String DEFAULT normalizeQuery(exception_text);
ALTER TABLE query_log UPDATE exception = normalizeQuery(exception) WHERE exception != '';
