//! Tickwave's execution core, exposed to Python as `tickwave_core`.
//!
//! The rules live in plain Rust modules (tested with `cargo test`, no Python linked); this file
//! is their Python face only: conversions in, conversions out, no rule of its own.

pub mod chain;
pub mod lifecycle;
pub mod pyfloat;
pub mod sizing;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// The core's version, so the shell can tell which build it loaded.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Return the audit chain's link hash of `canonical` after `previous_hash` (lowercase hex SHA-256).
/// A previous hash that is not ASCII is refused (`ValueError`), as the hex it must be.
#[pyfunction]
fn link_hash(previous_hash: &str, canonical: &[u8]) -> PyResult<String> {
    if !previous_hash.is_ascii() {
        return Err(PyValueError::new_err("a chain's previous hash is ASCII hex"));
    }
    Ok(chain::link_hash(previous_hash, canonical))
}

/// Link a sequence of canonical event bytes after `head`; return `(new head, next seq)`.
#[pyfunction]
fn chain_extend(head: &str, next_seq: i64, canonicals: Vec<Bound<'_, PyBytes>>) -> (String, i64) {
    chain::extend(head, next_seq, canonicals.iter().map(|bytes| bytes.as_bytes()))
}

/// Return whether the order lifecycle allows `from_status -> to_status` (wire names).
#[pyfunction]
fn is_allowed(from_status: &str, to_status: &str) -> bool {
    lifecycle::is_allowed_named(from_status, to_status)
}

/// Return every allowed `(from, to)` pair of the order lifecycle (wire names).
#[pyfunction]
fn transitions() -> Vec<(&'static str, &'static str)> {
    lifecycle::transitions().into_iter().map(|(from, to)| (from.name(), to.name())).collect()
}

/// Return the statuses an order ends in.
#[pyfunction]
fn terminal_statuses() -> Vec<&'static str> {
    lifecycle::ALL.into_iter().filter(|s| s.is_terminal()).map(|s| s.name()).collect()
}

/// Return the statuses in which the broker may still fill an order.
#[pyfunction]
fn working_statuses() -> Vec<&'static str> {
    lifecycle::ALL.into_iter().filter(|s| s.is_working()).map(|s| s.name()).collect()
}

/// Return `lots` as whole lot steps, rounded towards zero.
#[pyfunction]
fn to_steps(lots: f64, lot_step: f64) -> i64 {
    sizing::to_steps(lots, lot_step)
}

/// Return the decimals a multiple of `lot_step` is rounded to.
#[pyfunction]
fn lot_decimals(lot_step: f64) -> u32 {
    sizing::lot_decimals(lot_step)
}

/// Return whole lot steps as lots, rounded as Python's `round(steps * lot_step, decimals)`.
#[pyfunction]
#[pyo3(signature = (steps, lot_step, decimals=None))]
fn round_lots(steps: i64, lot_step: f64, decimals: Option<u32>) -> f64 {
    sizing::round_lots(steps, lot_step, decimals.unwrap_or_else(|| sizing::lot_decimals(lot_step)))
}

/// The sizing rules of one policy: caps in steps and decimals worked out once.
#[pyclass(frozen, name = "Sizing", module = "tickwave_core")]
struct PySizing {
    policy: sizing::Policy,
}

#[pymethods]
impl PySizing {
    #[new]
    fn new(max_position_lots: f64, max_order_lots: f64, lot_step: f64, min_strength: f64) -> Self {
        PySizing { policy: sizing::Policy::new(max_position_lots, max_order_lots, lot_step, min_strength) }
    }

    /// The largest position as whole lot steps.
    #[getter]
    fn position_cap_steps(&self) -> i64 {
        self.policy.position_cap_steps
    }

    /// The largest order as whole lot steps.
    #[getter]
    fn order_cap_steps(&self) -> i64 {
        self.policy.order_cap_steps
    }

    /// The decimals lots are rounded to.
    #[getter]
    fn lot_decimals(&self) -> u32 {
        self.policy.lot_decimals
    }

    /// Return the signed position a direction (`long`, `short`, `flat`) and strength ask for.
    fn target_lots(&self, direction: &str, strength: f64) -> PyResult<f64> {
        let sign = sizing::direction_sign(direction)
            .ok_or_else(|| PyValueError::new_err(format!("unknown direction {direction:?}")))?;
        Ok(self.policy.target_lots(sign, strength))
    }

    /// Return `("buy" | "sell", lots)` moving `current_lots` towards `target_lots`, or None when there.
    fn order_for(&self, target_lots: f64, current_lots: f64) -> Option<(&'static str, f64)> {
        self.policy
            .order_for(target_lots, current_lots)
            .map(|(buy, lots)| (if buy { "buy" } else { "sell" }, lots))
    }
}

#[pymodule]
fn tickwave_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", VERSION)?;
    m.add("GENESIS_HASH", chain::GENESIS_HASH)?;
    m.add_function(wrap_pyfunction!(link_hash, m)?)?;
    m.add_function(wrap_pyfunction!(chain_extend, m)?)?;
    m.add_function(wrap_pyfunction!(is_allowed, m)?)?;
    m.add_function(wrap_pyfunction!(transitions, m)?)?;
    m.add_function(wrap_pyfunction!(terminal_statuses, m)?)?;
    m.add_function(wrap_pyfunction!(working_statuses, m)?)?;
    m.add_function(wrap_pyfunction!(to_steps, m)?)?;
    m.add_function(wrap_pyfunction!(lot_decimals, m)?)?;
    m.add_function(wrap_pyfunction!(round_lots, m)?)?;
    m.add_class::<PySizing>()?;
    Ok(())
}
