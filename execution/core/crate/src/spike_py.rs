//! The spike filter's Python face (`tickwave_core.SpikeFilter`, subclassed by
//! `tickwave.validation.SpikeFilter`): conversions only, the rule is `spike.rs`.
//!
//! Its state is pickled in the dataflow's recovery snapshots as the field dict the Python
//! dataclass wrote (`__getstate__` / `__setstate__`), so a snapshot of either loads into the other;
//! a field a snapshot lacks (written before it existed) reads its default.

use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::spike::{Limits, SpikeFilter, State};

/// Rejects isolated price spikes of one symbol against a slow EMA reference (see `spike.rs`).
#[pyclass(subclass, eq, name = "SpikeFilter", module = "tickwave_core")]
#[derive(PartialEq)]
pub struct PySpikeFilter {
    pub(crate) filter: SpikeFilter,
}

/// Set `$target` from the dict's `$name` when present.
macro_rules! read_field {
    ($state:expr, $target:expr, $name:literal) => {
        if let Some(value) = $state.get_item($name)? {
            $target = value.extract()?;
        }
    };
}

#[pymethods]
impl PySpikeFilter {
    #[new]
    #[pyo3(signature = (
        threshold_bps=300.0, alpha=0.05, confirm_after=5, confirm_ms=10_000, tolerance_bps=100.0,
        max_factor=2.0, reference=0.0, reference_ms=-1, held=0, pending_side=0, pending_count=0,
        pending_first_ms=0, pending_last_ms=0, pending_low=0.0, pending_high=0.0
    ))]
    #[allow(clippy::too_many_arguments)] // the dataclass's fields, in its order
    fn new(
        threshold_bps: f64,
        alpha: f64,
        confirm_after: i64,
        confirm_ms: i64,
        tolerance_bps: f64,
        max_factor: f64,
        reference: f64,
        reference_ms: i64,
        held: i64,
        pending_side: i64,
        pending_count: i64,
        pending_first_ms: i64,
        pending_last_ms: i64,
        pending_low: f64,
        pending_high: f64,
    ) -> Self {
        PySpikeFilter {
            filter: SpikeFilter {
                limits: Limits {
                    threshold_bps,
                    alpha,
                    confirm_after,
                    confirm_ms,
                    tolerance_bps,
                    max_factor,
                },
                state: State {
                    reference,
                    reference_ms,
                    held,
                    pending_side,
                    pending_count,
                    pending_first_ms,
                    pending_last_ms,
                    pending_low,
                    pending_high,
                },
            },
        }
    }

    /// Return a rejection reason for a spike, or None (and update the reference).
    ///
    /// `tick`: anything with `time_ms`, `bid` and `ask` (a `tickwave.contracts.Tick`).
    fn check(&mut self, tick: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
        let py = tick.py();
        let time_ms: i64 = tick.getattr(intern!(py, "time_ms"))?.extract()?;
        let bid: f64 = tick.getattr(intern!(py, "bid"))?.extract()?;
        let ask: f64 = tick.getattr(intern!(py, "ask"))?.extract()?;
        Ok(self
            .filter
            .check(time_ms, bid, ask)
            .map(|rejected| rejected.reason()))
    }

    /// The fields as the dataclass pickled them (limits, then state, by name).
    fn __getstate__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (l, s) = (&self.filter.limits, &self.filter.state);
        let state = PyDict::new(py);
        state.set_item("threshold_bps", l.threshold_bps)?;
        state.set_item("alpha", l.alpha)?;
        state.set_item("confirm_after", l.confirm_after)?;
        state.set_item("confirm_ms", l.confirm_ms)?;
        state.set_item("tolerance_bps", l.tolerance_bps)?;
        state.set_item("max_factor", l.max_factor)?;
        state.set_item("reference", s.reference)?;
        state.set_item("reference_ms", s.reference_ms)?;
        state.set_item("held", s.held)?;
        state.set_item("pending_side", s.pending_side)?;
        state.set_item("pending_count", s.pending_count)?;
        state.set_item("pending_first_ms", s.pending_first_ms)?;
        state.set_item("pending_last_ms", s.pending_last_ms)?;
        state.set_item("pending_low", s.pending_low)?;
        state.set_item("pending_high", s.pending_high)?;
        Ok(state)
    }

    /// Load a pickled field dict (the dataclass's or this class's); a missing field reads its default.
    fn __setstate__(&mut self, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let state = state.cast::<PyDict>().map_err(|_| {
            PyTypeError::new_err("a spike filter's pickled state is a dict of its fields")
        })?;
        let mut filter = SpikeFilter::default();
        let (l, s) = (&mut filter.limits, &mut filter.state);
        read_field!(state, l.threshold_bps, "threshold_bps");
        read_field!(state, l.alpha, "alpha");
        read_field!(state, l.confirm_after, "confirm_after");
        read_field!(state, l.confirm_ms, "confirm_ms");
        read_field!(state, l.tolerance_bps, "tolerance_bps");
        read_field!(state, l.max_factor, "max_factor");
        read_field!(state, s.reference, "reference");
        read_field!(state, s.reference_ms, "reference_ms");
        read_field!(state, s.held, "held");
        read_field!(state, s.pending_side, "pending_side");
        read_field!(state, s.pending_count, "pending_count");
        read_field!(state, s.pending_first_ms, "pending_first_ms");
        read_field!(state, s.pending_last_ms, "pending_last_ms");
        read_field!(state, s.pending_low, "pending_low");
        read_field!(state, s.pending_high, "pending_high");
        self.filter = filter;
        Ok(())
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let name = slf.get_type().qualname()?;
        let state = slf.borrow().__getstate__(slf.py())?;
        let fields: Vec<String> = state
            .iter()
            .map(|(key, value)| Ok(format!("{key}={}", value.repr()?)))
            .collect::<PyResult<_>>()?;
        Ok(format!("{name}({})", fields.join(", ")))
    }

    #[getter]
    fn threshold_bps(&self) -> f64 {
        self.filter.limits.threshold_bps
    }
    #[getter]
    fn alpha(&self) -> f64 {
        self.filter.limits.alpha
    }
    #[getter]
    fn confirm_after(&self) -> i64 {
        self.filter.limits.confirm_after
    }
    #[getter]
    fn confirm_ms(&self) -> i64 {
        self.filter.limits.confirm_ms
    }
    #[getter]
    fn tolerance_bps(&self) -> f64 {
        self.filter.limits.tolerance_bps
    }
    #[getter]
    fn max_factor(&self) -> f64 {
        self.filter.limits.max_factor
    }
    #[getter]
    fn reference(&self) -> f64 {
        self.filter.state.reference
    }
    #[getter]
    fn reference_ms(&self) -> i64 {
        self.filter.state.reference_ms
    }
    #[getter]
    fn held(&self) -> i64 {
        self.filter.state.held
    }
    #[getter]
    fn pending_side(&self) -> i64 {
        self.filter.state.pending_side
    }
    #[getter]
    fn pending_count(&self) -> i64 {
        self.filter.state.pending_count
    }
    #[getter]
    fn pending_first_ms(&self) -> i64 {
        self.filter.state.pending_first_ms
    }
    #[getter]
    fn pending_last_ms(&self) -> i64 {
        self.filter.state.pending_last_ms
    }
    #[getter]
    fn pending_low(&self) -> f64 {
        self.filter.state.pending_low
    }
    #[getter]
    fn pending_high(&self) -> f64 {
        self.filter.state.pending_high
    }
}

pub fn add(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySpikeFilter>()
}
