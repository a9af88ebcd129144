//! Tickwave's execution core, exposed to Python as `tickwave_core`.
//!
//! The rules live in plain Rust modules (tested with `cargo test`, no Python linked); this file
//! is their Python face only: conversions in, conversions out, no rule of its own.

pub mod chain;

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

#[pymodule]
fn tickwave_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", VERSION)?;
    m.add("GENESIS_HASH", chain::GENESIS_HASH)?;
    m.add_function(wrap_pyfunction!(link_hash, m)?)?;
    m.add_function(wrap_pyfunction!(chain_extend, m)?)?;
    Ok(())
}
