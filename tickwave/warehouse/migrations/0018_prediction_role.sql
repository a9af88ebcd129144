-- Live champion / challenger: each prediction names the role its model played when it was made.
--
-- `champion`: the model of its (model_id, timeframe) slot whose signals trade; `challenger`: a
-- registered challenger scored in shadow on the same feature vectors, stored here and never
-- turned into a signal. The version is `model_version`, already in the sorting key, so a
-- challenger's rows never replace the champion's. Older rows read as champion rows.

ALTER TABLE predictions
    ADD COLUMN IF NOT EXISTS role LowCardinality(String) DEFAULT 'champion';
