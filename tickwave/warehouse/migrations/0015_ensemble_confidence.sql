-- An ensemble's predictions and signals name its members, and its predictions keep their confidence score.
--
-- `predictions.confidence`: the ensemble's score (members' weighted agreement x certainty of
-- the blend, in [0, 1]); NULL for a single model, whose signal confidence is the probability
-- of the chosen label. `members` ("framework:weight", e.g. "xgboost:0.55") on both tables;
-- empty for a single model. Older rows read with the defaults.

ALTER TABLE predictions
    ADD COLUMN IF NOT EXISTS confidence Nullable(Float64),
    ADD COLUMN IF NOT EXISTS members Array(String) DEFAULT [];

ALTER TABLE signals
    ADD COLUMN IF NOT EXISTS members Array(String) DEFAULT [];
