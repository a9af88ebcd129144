-- Where each order went: the venue its OrderSubmitted names (`paper`, `mt5:<trade server>`), so the
-- execution-quality report gives reject and requote rates per venue (best execution is judged per venue).
--
-- `orders.venue` is the order's venue, set from its submission by the audit loader; in
-- `order_events` only the submission carries it (the other events of the order are the
-- venue's answers). Rows written before this migration, and events journaled before the field
-- existed, have ''; the compliance views show them as 'unknown'.

ALTER TABLE orders
    ADD COLUMN IF NOT EXISTS venue LowCardinality(String) DEFAULT '';

ALTER TABLE order_events
    ADD COLUMN IF NOT EXISTS venue LowCardinality(String) DEFAULT '';
