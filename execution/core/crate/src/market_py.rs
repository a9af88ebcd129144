//! The market table's Python face (`tickwave_core.MarketTable`): conversions only, the table is
//! `market.rs`; `tickwave.market.MarketCalendar.table` builds one from the Python rule.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::market::MarketTable;

/// When the market is open and the trading day, over a span of UTC ms (see `market.rs`).
#[pyclass(frozen, name = "MarketTable", module = "tickwave_core")]
pub struct PyMarketTable {
    pub(crate) table: MarketTable,
}

#[pymethods]
impl PyMarketTable {
    /// `changes`: `(from_ms, is_open, trading day's ISO name)` in strictly increasing time; the
    /// span is from the first to `end_ms` (excluded).
    #[new]
    fn new(changes: Vec<(i64, bool, String)>, end_ms: i64) -> PyResult<Self> {
        MarketTable::new(changes, end_ms)
            .map(|table| PyMarketTable { table })
            .map_err(|error| PyValueError::new_err(error.0))
    }

    /// Whether the market is open at `ms` (None outside the span).
    fn is_open(&self, ms: i64) -> Option<bool> {
        self.table.is_open(ms)
    }

    /// The trading day of `ms` as its ISO date (None outside the span).
    fn trading_day(&self, ms: i64) -> Option<String> {
        self.table.trading_day(ms)
    }

    /// `(start, end)`: the span answered, UTC ms, the end excluded.
    #[getter]
    fn span(&self) -> (i64, i64) {
        self.table.span()
    }

    fn __len__(&self) -> usize {
        self.table.len()
    }
}

pub fn add(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyMarketTable>()
}
