-- The model registry's audit: who or what changed a model's stage, and the trail of every change.
--
-- `model_registry` keeps one current row per (model_id, model_version) (ReplacingMergeTree
-- on updated_at_ms: read with FINAL); its stage is candidate, champion or retired. The
-- two new columns say who or what made the latest stage change (a user@host through the
-- CLI, `tickwave train`, a Dagster run) and why.
--
-- `model_registry_events` is the audit trail: one row per registration, promotion,
-- refused promotion, retirement, rollback and restore, never updated. Rows are keyed by
-- a unique event_id, so only a retried insert of the same event collapses.

ALTER TABLE model_registry
    ADD COLUMN IF NOT EXISTS stage_changed_by String DEFAULT '',
    ADD COLUMN IF NOT EXISTS stage_reason String DEFAULT '';

CREATE TABLE IF NOT EXISTS model_registry_events
(
    event_id       String,
    model_id       LowCardinality(String),
    model_version  UInt32,
    action         LowCardinality(String),
    from_stage     LowCardinality(String),
    to_stage       LowCardinality(String),
    actor          String,
    reason         String,
    metrics        Map(String, Float64),
    occurred_at_ms DateTime64(3, 'UTC'),
    inserted_at    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(inserted_at)
ORDER BY (model_id, occurred_at_ms, event_id)
SETTINGS non_replicated_deduplication_window = 1000;
