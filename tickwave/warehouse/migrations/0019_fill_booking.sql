-- What the execution engine booked for each fill (tickwave.contracts.Fill; execution.core.positions.Book.book):
-- the symbol's position before and after it, the open lots' entry value (lots x entry price, first-in
-- first-out) after it, the realized P&L in the quote and the account currency, the round trip it
-- belongs to (for a flip: the one it closes) and the one it opens. The marts and reports add these
-- up instead of deriving positions and trips again in SQL, so there is one accounting rule.
--
-- Exact types: lots as Decimal(18, 8), amounts as Decimal(38, 18), never Float64 sums. Fills written
-- before the engine booked them have NULL figures and an empty round_trip_id; the marts leave them out.

ALTER TABLE fills
    ADD COLUMN IF NOT EXISTS position_before_lots Nullable(Decimal(18, 8));

ALTER TABLE fills
    ADD COLUMN IF NOT EXISTS position_after_lots Nullable(Decimal(18, 8));

ALTER TABLE fills
    ADD COLUMN IF NOT EXISTS entry_value_after Nullable(Decimal(38, 18));

ALTER TABLE fills
    ADD COLUMN IF NOT EXISTS realized_pnl_quote Nullable(Decimal(38, 18));

ALTER TABLE fills
    ADD COLUMN IF NOT EXISTS realized_pnl_account Nullable(Decimal(38, 18));

ALTER TABLE fills
    ADD COLUMN IF NOT EXISTS round_trip_id String DEFAULT '';

ALTER TABLE fills
    ADD COLUMN IF NOT EXISTS opens_round_trip_id String DEFAULT '';
