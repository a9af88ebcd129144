-- Compliance (issue 24): every order event carries its link of the audit hash chain,
-- computed by the execution process where it journals the event (tickwave.audit_chain):
-- the chain (the execution instance), the event's position in it, the previous event's
-- hash and its own, sha256(previous hash + "\n" + payload). `tickwave report verify`
-- recomputes the chain from these columns and `payload`. Rows written before this
-- migration (or behind the platform's back) have an empty `chain_hash`.
ALTER TABLE order_events ADD COLUMN IF NOT EXISTS chain_id LowCardinality(String) DEFAULT '' AFTER payload;
ALTER TABLE order_events ADD COLUMN IF NOT EXISTS chain_seq UInt64 DEFAULT 0 AFTER chain_id;
ALTER TABLE order_events ADD COLUMN IF NOT EXISTS chain_prev_hash String DEFAULT '' AFTER chain_seq;
ALTER TABLE order_events ADD COLUMN IF NOT EXISTS chain_hash String DEFAULT '' AFTER chain_prev_hash;
