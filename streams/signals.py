"""From a prediction to a trading signal: direction, strength and confidence.

The model gives probabilities per label (``up``, ``down`` and optionally ``flat``). With
``edge = p(up) - p(down)``: long when ``p(up) >= entry_probability`` and
``edge >= min_edge``, short symmetrically, flat otherwise. ``strength`` is ``|edge|``
for long/short (0 for flat) and ``confidence`` is the probability of the chosen label, or
for an ensemble its confidence score (members' agreement x certainty of the blend), with
its members named on the signal.
A flat signal is emitted too: it tells execution to hold no position. The
``signal_id`` is a hash of model, version, symbol, timeframe and bar, so a re-emitted
bar (recovery, replay) gives the same id and execution places no second order.
"""

from __future__ import annotations

from tickwave.contracts import Direction, Prediction, Signal
from tickwave.modeling import SignalRules


def signal_from(prediction: Prediction, rules: SignalRules, now_ms: int) -> Signal:
    """Return the signal for one prediction (deterministic id; ``now_ms`` stamps it)."""
    probabilities = prediction.probabilities
    up = probabilities.get("up", 0.0)
    down = probabilities.get("down", 0.0)
    edge = up - down
    direction: Direction
    if up >= rules.entry_probability and edge >= rules.min_edge:
        direction, strength, confidence = "long", min(1.0, edge), up
    elif down >= rules.entry_probability and -edge >= rules.min_edge:
        direction, strength, confidence = "short", min(1.0, -edge), down
    else:
        direction, strength = "flat", 0.0
        confidence = probabilities.get("flat", 1.0 - max(up, down))
    if prediction.confidence is not None:  # an ensemble's own score: agreement x certainty
        confidence = prediction.confidence
    return Signal(
        signal_id=Signal.make_id(
            prediction.model_id,
            prediction.model_version,
            prediction.symbol,
            prediction.timeframe,
            prediction.bar_start_ms,
        ),
        symbol=prediction.symbol,
        timeframe=prediction.timeframe,
        bar_start_ms=prediction.bar_start_ms,
        direction=direction,
        strength=strength,
        confidence=min(1.0, max(0.0, confidence)),
        model_id=prediction.model_id,
        model_version=prediction.model_version,
        created_at_ms=now_ms,
        members=prediction.members,
    )
