//! Decoded ticks as columns for the kernel's rule table (`tickwave.validation.check_ticks`):
//! conversions only, one pass over the ticks with no Python per field. The rules stay the kernel's.

use crate::maps::{HashMap, HashMapExt};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};

/// The columns of `tick_columns`: symbols in the order first met, then each field as native-endian
/// bytes (`symbol_code` i32, `time_ms` i64, `bid`, `ask`, `last`, `volume` f64, `flags` i64).
type Columns<'py> = (
    Vec<String>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
);

/// Read each tick's `symbol`, `time_ms`, `bid`, `ask`, `last`, `volume` and `flags` into columns.
#[pyfunction]
fn tick_columns<'py>(py: Python<'py>, ticks: &Bound<'py, PyList>) -> PyResult<Columns<'py>> {
    let count = ticks.len();
    let mut codes: HashMap<String, i32> = HashMap::new();
    let mut symbols: Vec<String> = Vec::new();
    let (mut symbol_code, mut time_ms, mut flags) = (
        Vec::with_capacity(count * 4),
        Vec::with_capacity(count * 8),
        Vec::with_capacity(count * 8),
    );
    let mut floats: [Vec<u8>; 4] = std::array::from_fn(|_| Vec::with_capacity(count * 8));
    let float_names = [
        intern!(py, "bid"),
        intern!(py, "ask"),
        intern!(py, "last"),
        intern!(py, "volume"),
    ];
    for tick in ticks.iter() {
        let symbol = tick.getattr(intern!(py, "symbol"))?;
        let symbol = symbol.cast::<PyString>()?.to_str()?;
        let code = match codes.get(symbol) {
            Some(code) => *code,
            None => {
                let code = i32::try_from(symbols.len()).unwrap_or(i32::MAX);
                codes.insert(symbol.to_owned(), code);
                symbols.push(symbol.to_owned());
                code
            }
        };
        symbol_code.extend_from_slice(&code.to_ne_bytes());
        let at: i64 = tick.getattr(intern!(py, "time_ms"))?.extract()?;
        time_ms.extend_from_slice(&at.to_ne_bytes());
        for (column, name) in floats.iter_mut().zip(float_names) {
            let value: f64 = tick.getattr(name)?.extract()?;
            column.extend_from_slice(&value.to_ne_bytes());
        }
        let flag: i64 = tick.getattr(intern!(py, "flags"))?.extract()?;
        flags.extend_from_slice(&flag.to_ne_bytes());
    }
    let [bid, ask, last, volume] = floats;
    Ok((
        symbols,
        PyBytes::new(py, &symbol_code),
        PyBytes::new(py, &time_ms),
        PyBytes::new(py, &bid),
        PyBytes::new(py, &ask),
        PyBytes::new(py, &last),
        PyBytes::new(py, &volume),
        PyBytes::new(py, &flags),
    ))
}

pub fn add(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(tick_columns, m)?)
}
