//! Tickwave's execution core, exposed to Python as `tickwave_core`.
//!
//! The rules live in plain Rust modules (tested with `cargo test`, no Python linked); this file
//! is their Python face only: conversions in, conversions out, no rule of its own.

pub mod chain;
pub mod lifecycle;

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
    Ok(())
}
