//! Tickwave's execution core, exposed to Python as `tickwave_core`.

use pyo3::prelude::*;

/// The core's version, so the shell can tell which build it loaded.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[pymodule]
fn tickwave_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", VERSION)?;
    Ok(())
}
