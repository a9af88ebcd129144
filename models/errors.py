"""The models component's errors, each under the ``tickwave.errors`` category that says what to do.

Every one of them stops a training run or a registry change before anything is written:
no artifact is stored and no registry row is inserted.
"""

from __future__ import annotations

from tickwave.errors import ConfigurationError, DataQualityError, TickwaveError


class NotEnoughDataError(DataQualityError):
    """Too few labelled rows, or too few classes, to train or evaluate (widen the range)."""


class InvalidFeaturesError(DataQualityError):
    """A warm feature row holds NaN, infinity or a missing value (fix the features upstream)."""


class LeakageError(DataQualityError):
    """A stored feature at bar t differs from its replay on bars up to t: it uses the future."""


class ParityError(DataQualityError):
    """The ONNX export's probabilities differ from the trained model's (do not serve it)."""


class SchemaMismatchError(ConfigurationError):
    """Features or a model belong to another feature schema than the one asked for."""


class RegistryError(TickwaveError):
    """The registry cannot do what was asked (no such model, no champion to roll back); nothing changed."""


class PromotionRefused(RegistryError):
    """A candidate did not pass the promotion rules; the champion stays.

    Attributes:
        reasons: every rule the candidate failed, in plain words.
        notes: context of the decision (which champion, which holdout).
        figures: the numbers compared (log losses, calibration error...).
    """

    def __init__(
        self,
        model_id: str,
        model_version: int,
        reasons: list[str],
        notes: list[str] | None = None,
        figures: dict[str, float] | None = None,
    ) -> None:
        super().__init__(f"{model_id} v{model_version} not promoted: " + "; ".join(reasons))
        self.reasons = reasons
        self.notes = notes or []
        self.figures = figures or {}
