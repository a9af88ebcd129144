//! The messages the engine journals or builds, as Rust values, and their wire bytes.
//!
//! Each type is one struct of `tickwave.contracts` (the Python structs stay the schema's home):
//! the same tag, the same fields in the same order ([`SCHEMA`], which a test compares with the
//! structs' `__struct_fields__` and `__struct_config__.tag`). [`Event::encode_into`] writes exactly
//! the bytes `tickwave.contracts.encode` (msgspec) writes: `{"type":<tag>` then every field in
//! order, defaults included, a field left `UNSET` absent; floats in their shortest round-trip
//! digits (positional from 1e-5 to below 1e16, else `1e16`, `1.5e-7`), not finite as `null`;
//! strings with `"`, `\` and the control characters escaped, everything else as UTF-8; exact
//! decimals as their `str(Decimal)` text in quotes.
//!
//! Integers are 64-bit: the conversion from Python refuses a wider one rather than write it
//! differently (msgspec writes any int).

use crate::chain;
use crate::money::{push_int, Dec};
use crate::pyfloat::repr_digits;

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            /// Every value, in the contract's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value's wire text.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value of a wire text, or None for a text the contract does not allow.
            pub fn from_name(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

wire_enum!(
    /// An order's side.
    Side { Buy = "buy", Sell = "sell" }
);
wire_enum!(
    /// An order's type.
    OrderType { Market = "market", Limit = "limit" }
);
wire_enum!(
    /// A signal's direction.
    Direction { Long = "long", Short = "short", Flat = "flat" }
);
wire_enum!(
    /// A risk event's severity.
    Severity { Info = "info", Warning = "warning", Critical = "critical" }
);
wire_enum!(
    /// The execution process's trading state.
    TradingState { Active = "ACTIVE", Reducing = "REDUCING", Halted = "HALTED" }
);
wire_enum!(
    /// An operator's command.
    Command {
        Halt = "halt",
        Reduce = "reduce",
        Resume = "resume",
        Status = "status",
        SetLimit = "set_limit",
        Flatten = "flatten",
    }
);

/// One quote from a market source (`Tick`, an input).
#[derive(Clone, Debug, PartialEq)]
pub struct Tick {
    pub symbol: String,
    pub time_ms: i64,
    pub seq: i64,
    pub bid: f64,
    pub ask: f64,
    pub last: f64,
    pub volume: f64,
    pub flags: i64,
    pub source: String,
}

/// A trading signal (`Signal`, an input).
#[derive(Clone, Debug, PartialEq)]
pub struct Signal {
    pub signal_id: String,
    pub symbol: String,
    pub timeframe: String,
    pub bar_start_ms: i64,
    pub direction: Direction,
    pub strength: f64,
    pub confidence: f64,
    pub model_id: String,
    pub model_version: i64,
    pub created_at_ms: i64,
    pub members: Vec<String>,
}

/// A sized order before the risk checks (`OrderIntent`).
#[derive(Clone, Debug, PartialEq)]
pub struct OrderIntent {
    pub client_order_id: String,
    pub signal_id: String,
    pub symbol: String,
    pub side: Side,
    pub quantity_lots: f64,
    pub order_type: OrderType,
    pub model_id: String,
    pub model_version: i64,
    pub created_at_ms: i64,
    pub limit_price: Option<f64>,
}

/// The fields every order event carries first, in this order.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderHeader {
    pub client_order_id: String,
    pub signal_id: String,
    pub symbol: String,
    pub model_id: String,
    pub model_version: i64,
    pub event_at_ms: i64,
}

/// The order was journaled and sent (`OrderSubmitted`); `venue` None: unset, absent from the JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderSubmitted {
    pub header: OrderHeader,
    pub side: Side,
    pub quantity_lots: f64,
    pub order_type: OrderType,
    pub limit_price: Option<f64>,
    pub venue: Option<String>,
}

/// The broker accepted the order (`OrderAccepted`).
#[derive(Clone, Debug, PartialEq)]
pub struct OrderAccepted {
    pub header: OrderHeader,
    pub broker_order_id: String,
}

/// The broker refused the order (`OrderRejected`).
#[derive(Clone, Debug, PartialEq)]
pub struct OrderRejected {
    pub header: OrderHeader,
    pub reason: String,
    pub broker_code: Option<i64>,
}

/// The order was filled, wholly or in part (`OrderFilled`).
#[derive(Clone, Debug, PartialEq)]
pub struct OrderFilled {
    pub header: OrderHeader,
    pub fill_id: String,
    pub fill_price: f64,
    pub fill_lots: f64,
    pub cumulative_lots: f64,
    pub is_final: bool,
}

/// The order was canceled (`OrderCanceled`).
#[derive(Clone, Debug, PartialEq)]
pub struct OrderCanceled {
    pub header: OrderHeader,
    pub reason: String,
}

/// The risk gate refused the order (`OrderDenied`).
#[derive(Clone, Debug, PartialEq)]
pub struct OrderDenied {
    pub header: OrderHeader,
    pub reason: String,
    pub check: String,
}

/// One execution and its booking (`Fill`, boxed in an [`Event`]: its amounts make it the widest). Each booking field None: unset, absent from the JSON;
/// `realized_pnl_account` `Some(None)`: no rate was known, `null`.
#[derive(Clone, Debug, PartialEq)]
pub struct Fill {
    pub fill_id: String,
    pub client_order_id: String,
    pub signal_id: String,
    pub symbol: String,
    pub side: Side,
    pub price: f64,
    pub quantity_lots: f64,
    pub commission: f64,
    pub filled_at_ms: i64,
    pub model_id: String,
    pub model_version: i64,
    pub broker_deal_id: String,
    pub position_before_lots: Option<Dec>,
    pub position_after_lots: Option<Dec>,
    pub entry_value_after: Option<Dec>,
    pub realized_pnl_quote: Option<Dec>,
    pub realized_pnl_account: Option<Option<Dec>>,
    pub round_trip_id: Option<String>,
    pub opens_round_trip_id: Option<String>,
}

/// A limit breach, breaker, halt or resume (`RiskEvent`).
#[derive(Clone, Debug, PartialEq)]
pub struct RiskEvent {
    pub risk_event_id: String,
    pub kind: String,
    pub severity: Severity,
    pub trading_state: TradingState,
    pub detail: String,
    pub occurred_at_ms: i64,
    pub symbol: String,
    pub check: String,
}

/// An operator's command (`ControlCommand`); `params` in the order given.
#[derive(Clone, Debug, PartialEq)]
pub struct ControlCommand {
    pub command_id: String,
    pub command: Command,
    pub issued_by: String,
    pub issued_at_ms: i64,
    pub reason: String,
    pub symbol: String,
    pub params: Vec<(String, String)>,
}

/// Every message the engine takes in, journals or builds.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Tick(Tick),
    Signal(Signal),
    OrderIntent(OrderIntent),
    OrderSubmitted(OrderSubmitted),
    OrderAccepted(OrderAccepted),
    OrderRejected(OrderRejected),
    OrderFilled(OrderFilled),
    OrderCanceled(OrderCanceled),
    OrderDenied(OrderDenied),
    Fill(Box<Fill>),
    RiskEvent(RiskEvent),
    ControlCommand(ControlCommand),
}

/// One message type's schema: the Python struct's name, its tag and its fields in order.
pub struct Schema {
    pub name: &'static str,
    pub tag: &'static str,
    pub fields: &'static [&'static str],
}

const HEADER: [&str; 6] = [
    "client_order_id",
    "signal_id",
    "symbol",
    "model_id",
    "model_version",
    "event_at_ms",
];

macro_rules! header_then {
    ($($field:literal),*) => {
        &[
            HEADER[0], HEADER[1], HEADER[2], HEADER[3], HEADER[4], HEADER[5], $($field),*
        ]
    };
}

/// The schema of each type, in [`Event`]'s order (the encoder writes these names; a test checks it).
pub const SCHEMA: [Schema; 12] = [
    Schema {
        name: "Tick",
        tag: "tick.v1",
        fields: &[
            "symbol", "time_ms", "seq", "bid", "ask", "last", "volume", "flags", "source",
        ],
    },
    Schema {
        name: "Signal",
        tag: "signal.v1",
        fields: &[
            "signal_id",
            "symbol",
            "timeframe",
            "bar_start_ms",
            "direction",
            "strength",
            "confidence",
            "model_id",
            "model_version",
            "created_at_ms",
            "members",
        ],
    },
    Schema {
        name: "OrderIntent",
        tag: "order_intent.v1",
        fields: &[
            "client_order_id",
            "signal_id",
            "symbol",
            "side",
            "quantity_lots",
            "order_type",
            "model_id",
            "model_version",
            "created_at_ms",
            "limit_price",
        ],
    },
    Schema {
        name: "OrderSubmitted",
        tag: "order_submitted.v1",
        fields: header_then!(
            "side",
            "quantity_lots",
            "order_type",
            "limit_price",
            "venue"
        ),
    },
    Schema {
        name: "OrderAccepted",
        tag: "order_accepted.v1",
        fields: header_then!("broker_order_id"),
    },
    Schema {
        name: "OrderRejected",
        tag: "order_rejected.v1",
        fields: header_then!("reason", "broker_code"),
    },
    Schema {
        name: "OrderFilled",
        tag: "order_filled.v1",
        fields: header_then!(
            "fill_id",
            "fill_price",
            "fill_lots",
            "cumulative_lots",
            "is_final"
        ),
    },
    Schema {
        name: "OrderCanceled",
        tag: "order_canceled.v1",
        fields: header_then!("reason"),
    },
    Schema {
        name: "OrderDenied",
        tag: "order_denied.v1",
        fields: header_then!("reason", "check"),
    },
    Schema {
        name: "Fill",
        tag: "fill.v1",
        fields: &[
            "fill_id",
            "client_order_id",
            "signal_id",
            "symbol",
            "side",
            "price",
            "quantity_lots",
            "commission",
            "filled_at_ms",
            "model_id",
            "model_version",
            "broker_deal_id",
            "position_before_lots",
            "position_after_lots",
            "entry_value_after",
            "realized_pnl_quote",
            "realized_pnl_account",
            "round_trip_id",
            "opens_round_trip_id",
        ],
    },
    Schema {
        name: "RiskEvent",
        tag: "risk_event.v1",
        fields: &[
            "risk_event_id",
            "kind",
            "severity",
            "trading_state",
            "detail",
            "occurred_at_ms",
            "symbol",
            "check",
        ],
    },
    Schema {
        name: "ControlCommand",
        tag: "control_command.v1",
        fields: &[
            "command_id",
            "command",
            "issued_by",
            "issued_at_ms",
            "reason",
            "symbol",
            "params",
        ],
    },
];

/// Index of each type in [`SCHEMA`] (the same order as [`Event`]'s variants).
pub mod kind {
    pub const TICK: usize = 0;
    pub const SIGNAL: usize = 1;
    pub const ORDER_INTENT: usize = 2;
    pub const ORDER_SUBMITTED: usize = 3;
    pub const ORDER_ACCEPTED: usize = 4;
    pub const ORDER_REJECTED: usize = 5;
    pub const ORDER_FILLED: usize = 6;
    pub const ORDER_CANCELED: usize = 7;
    pub const ORDER_DENIED: usize = 8;
    pub const FILL: usize = 9;
    pub const RISK_EVENT: usize = 10;
    pub const CONTROL_COMMAND: usize = 11;
}

/// A JSON object written field by field, each name taken from the type's [`Schema`] in order.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    fields: std::slice::Iter<'static, &'static str>,
}

impl<'a> Object<'a> {
    fn begin(out: &'a mut Vec<u8>, kind: usize) -> Self {
        let schema = &SCHEMA[kind];
        out.extend_from_slice(b"{\"type\":\"");
        out.extend_from_slice(schema.tag.as_bytes()); // no schema text needs escaping (a test holds it)
        out.push(b'"');
        Object {
            out,
            fields: schema.fields.iter(),
        }
    }

    /// Write the next field's name; return the buffer for its value.
    fn key(&mut self) -> &mut Vec<u8> {
        let name = self
            .fields
            .next()
            .expect("an encoder writes at most its schema's fields");
        self.out.extend_from_slice(b",\"");
        self.out.extend_from_slice(name.as_bytes()); // no schema text needs escaping (a test holds it)
        self.out.extend_from_slice(b"\":");
        self.out
    }

    /// Pass over the next field: it is unset (absent from the JSON).
    fn skip(&mut self) {
        self.fields.next();
    }

    fn str(&mut self, value: &str) -> &mut Self {
        write_str(self.key(), value);
        self
    }
    fn f64(&mut self, value: f64) -> &mut Self {
        write_f64(self.key(), value);
        self
    }
    fn i64(&mut self, value: i64) -> &mut Self {
        write_i64(self.key(), value);
        self
    }
    fn bool(&mut self, value: bool) -> &mut Self {
        self.key()
            .extend_from_slice(if value { b"true" } else { b"false" });
        self
    }
    fn opt_f64(&mut self, value: Option<f64>) -> &mut Self {
        match value {
            Some(value) => write_f64(self.key(), value),
            None => self.key().extend_from_slice(b"null"),
        }
        self
    }
    fn unset_str(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            Some(value) => {
                self.str(value);
            }
            None => self.skip(),
        }
        self
    }
    fn unset_dec(&mut self, value: Option<Option<Dec>>) -> &mut Self {
        match value {
            Some(Some(value)) => write_dec(self.key(), value),
            Some(None) => self.key().extend_from_slice(b"null"),
            None => self.skip(),
        }
        self
    }
    fn header(&mut self, header: &OrderHeader) -> &mut Self {
        self.str(&header.client_order_id)
            .str(&header.signal_id)
            .str(&header.symbol)
            .str(&header.model_id)
            .i64(header.model_version)
            .i64(header.event_at_ms)
    }
    fn end(&mut self) {
        debug_assert!(self.fields.next().is_none(), "every field written");
        self.out.push(b'}');
    }
}

impl Event {
    /// The type's index in [`SCHEMA`].
    pub fn kind(&self) -> usize {
        match self {
            Event::Tick(_) => kind::TICK,
            Event::Signal(_) => kind::SIGNAL,
            Event::OrderIntent(_) => kind::ORDER_INTENT,
            Event::OrderSubmitted(_) => kind::ORDER_SUBMITTED,
            Event::OrderAccepted(_) => kind::ORDER_ACCEPTED,
            Event::OrderRejected(_) => kind::ORDER_REJECTED,
            Event::OrderFilled(_) => kind::ORDER_FILLED,
            Event::OrderCanceled(_) => kind::ORDER_CANCELED,
            Event::OrderDenied(_) => kind::ORDER_DENIED,
            Event::Fill(_) => kind::FILL,
            Event::RiskEvent(_) => kind::RISK_EVENT,
            Event::ControlCommand(_) => kind::CONTROL_COMMAND,
        }
    }

    /// The wire tag (`"order_filled.v1"`).
    pub fn tag(&self) -> &'static str {
        SCHEMA[self.kind()].tag
    }

    /// Whether the event is an order event: one link of the audit chain.
    pub fn is_chained(&self) -> bool {
        matches!(
            self,
            Event::OrderSubmitted(_)
                | Event::OrderAccepted(_)
                | Event::OrderRejected(_)
                | Event::OrderFilled(_)
                | Event::OrderCanceled(_)
                | Event::OrderDenied(_)
        )
    }

    /// The event's wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(384);
        self.encode_into(&mut out);
        out
    }

    /// Append the event's wire bytes to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut o = Object::begin(out, self.kind());
        match self {
            Event::Tick(t) => o
                .str(&t.symbol)
                .i64(t.time_ms)
                .i64(t.seq)
                .f64(t.bid)
                .f64(t.ask)
                .f64(t.last)
                .f64(t.volume)
                .i64(t.flags)
                .str(&t.source),
            Event::Signal(s) => {
                o.str(&s.signal_id)
                    .str(&s.symbol)
                    .str(&s.timeframe)
                    .i64(s.bar_start_ms)
                    .str(s.direction.name())
                    .f64(s.strength)
                    .f64(s.confidence)
                    .str(&s.model_id)
                    .i64(s.model_version)
                    .i64(s.created_at_ms);
                let out = o.key();
                out.push(b'[');
                for (at, member) in s.members.iter().enumerate() {
                    if at > 0 {
                        out.push(b',');
                    }
                    write_str(out, member);
                }
                out.push(b']');
                &mut o
            }
            Event::OrderIntent(i) => o
                .str(&i.client_order_id)
                .str(&i.signal_id)
                .str(&i.symbol)
                .str(i.side.name())
                .f64(i.quantity_lots)
                .str(i.order_type.name())
                .str(&i.model_id)
                .i64(i.model_version)
                .i64(i.created_at_ms)
                .opt_f64(i.limit_price),
            Event::OrderSubmitted(e) => o
                .header(&e.header)
                .str(e.side.name())
                .f64(e.quantity_lots)
                .str(e.order_type.name())
                .opt_f64(e.limit_price)
                .unset_str(e.venue.as_deref()),
            Event::OrderAccepted(e) => o.header(&e.header).str(&e.broker_order_id),
            Event::OrderRejected(e) => {
                o.header(&e.header).str(&e.reason);
                match e.broker_code {
                    Some(code) => o.i64(code),
                    None => {
                        o.key().extend_from_slice(b"null");
                        &mut o
                    }
                }
            }
            Event::OrderFilled(e) => o
                .header(&e.header)
                .str(&e.fill_id)
                .f64(e.fill_price)
                .f64(e.fill_lots)
                .f64(e.cumulative_lots)
                .bool(e.is_final),
            Event::OrderCanceled(e) => o.header(&e.header).str(&e.reason),
            Event::OrderDenied(e) => o.header(&e.header).str(&e.reason).str(&e.check),
            Event::Fill(f) => o
                .str(&f.fill_id)
                .str(&f.client_order_id)
                .str(&f.signal_id)
                .str(&f.symbol)
                .str(f.side.name())
                .f64(f.price)
                .f64(f.quantity_lots)
                .f64(f.commission)
                .i64(f.filled_at_ms)
                .str(&f.model_id)
                .i64(f.model_version)
                .str(&f.broker_deal_id)
                .unset_dec(f.position_before_lots.map(Some))
                .unset_dec(f.position_after_lots.map(Some))
                .unset_dec(f.entry_value_after.map(Some))
                .unset_dec(f.realized_pnl_quote.map(Some))
                .unset_dec(f.realized_pnl_account)
                .unset_str(f.round_trip_id.as_deref())
                .unset_str(f.opens_round_trip_id.as_deref()),
            Event::RiskEvent(r) => o
                .str(&r.risk_event_id)
                .str(&r.kind)
                .str(r.severity.name())
                .str(r.trading_state.name())
                .str(&r.detail)
                .i64(r.occurred_at_ms)
                .str(&r.symbol)
                .str(&r.check),
            Event::ControlCommand(c) => {
                o.str(&c.command_id)
                    .str(c.command.name())
                    .str(&c.issued_by)
                    .i64(c.issued_at_ms)
                    .str(&c.reason)
                    .str(&c.symbol);
                let out = o.key();
                out.push(b'{');
                for (at, (key, value)) in c.params.iter().enumerate() {
                    if at > 0 {
                        out.push(b',');
                    }
                    write_str(out, key);
                    out.push(b':');
                    write_str(out, value);
                }
                out.push(b'}');
                &mut o
            }
        }
        .end();
    }
}

/// Link the order events among `events` into the audit chain after `head` (whose next seq is
/// `next_seq`), each over its wire bytes; return the new head and next seq.
pub fn chain_extend<'a, I>(head: &str, next_seq: i64, events: I) -> (String, i64)
where
    I: IntoIterator<Item = &'a Event>,
{
    let mut head = head.to_owned();
    let mut seq = next_seq;
    let mut bytes = Vec::with_capacity(512);
    for event in events {
        if event.is_chained() {
            bytes.clear();
            event.encode_into(&mut bytes);
            head = chain::link_hash(&head, &bytes);
            seq += 1;
        }
    }
    (head, seq)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Whether a byte is written escaped in a JSON string: `"`, `\` and the control characters.
const ESCAPED: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// The length of `bytes`' longest start, in whole 8-byte words, with no byte written escaped: a word
/// holds one when a byte is below 0x20 or equal to `"` or `\` (the exact tests of a zero byte and of a
/// byte below n <= 128 across a word; a byte from 0x80, of UTF-8, is neither).
fn clean_words(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_in = |word: u64| word.wrapping_sub(ONES) & !word & HIGH;
    let mut clean = 0;
    for chunk in bytes.chunks_exact(8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
        if control
            | zero_in(word ^ (ONES * u64::from(b'"')))
            | zero_in(word ^ (ONES * u64::from(b'\\')))
            != 0
        {
            break;
        }
        clean += 8;
    }
    clean
}

/// Write a JSON string: `"` and `\` escaped, control characters as `\b \t \n \f \r` or `\u00XX`.
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let clean = clean_words(bytes);
    out.extend_from_slice(&bytes[..clean]);
    let mut start = clean;
    for (at, &byte) in bytes.iter().enumerate().skip(clean) {
        if !ESCAPED[byte as usize] {
            continue;
        }
        out.extend_from_slice(&bytes[start..at]);
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(byte >> 4) as usize]);
                out.push(HEX[(byte & 0x0f) as usize]);
            }
        }
        start = at + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Write an integer in decimal.
pub fn write_i64(out: &mut Vec<u8>, value: i64) {
    push_int(out, value);
}

/// Write a float as msgspec does: its shortest round-trip digits, positional when its power of
/// ten is from -5 to 15 (`0.00001`, `1000000000000000.0`), else `<digits>e<power>` (`1e16`,
/// `1.5e-7`); `null` when it is not finite.
pub fn write_f64(out: &mut Vec<u8>, value: f64) {
    if !value.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    write_shortest(out, value, -5, false);
}

/// Write a finite float's shortest round-trip digits, positional when its power of ten is from
/// `lowest` to 15, else in exponent form: msgspec's (`1e16`) or, with `python_exponent`, `repr`'s
/// (`1e+16`, `1.5e-07`: a sign and at least two digits).
pub fn write_shortest(out: &mut Vec<u8>, value: f64, lowest: i32, python_exponent: bool) {
    if value.is_sign_negative() {
        out.push(b'-');
    }
    let shortest = repr_digits(value);
    let (digits, power) = (shortest.as_bytes(), shortest.power);
    let count = digits.len() as i32;
    if (lowest..16).contains(&power) {
        if power < 0 {
            out.extend_from_slice(b"0.");
            out.resize(out.len() + (-power - 1) as usize, b'0');
            out.extend_from_slice(digits);
        } else if count > power + 1 {
            out.extend_from_slice(&digits[..(power + 1) as usize]);
            out.push(b'.');
            out.extend_from_slice(&digits[(power + 1) as usize..]);
        } else {
            out.extend_from_slice(digits);
            out.resize(out.len() + (power + 1 - count) as usize, b'0');
            out.extend_from_slice(b".0");
        }
    } else {
        out.push(digits[0]);
        if count > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        if python_exponent {
            out.push(if power < 0 { b'-' } else { b'+' });
            if power.abs() < 10 {
                out.push(b'0');
            }
            write_i64(out, i64::from(power.abs()));
        } else {
            write_i64(out, i64::from(power));
        }
    }
}

/// A float's text as Python's `repr` writes it (`10.0`, `0.0001`, `1e-05`, `1e+16`, `inf`, `nan`).
pub fn py_repr(value: f64) -> String {
    if value.is_nan() {
        return "nan".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let mut out = Vec::with_capacity(24);
    write_shortest(&mut out, value, -4, true);
    String::from_utf8(out).unwrap_or_default() // only ASCII is written
}

/// Write an exact decimal as msgspec writes a `Decimal`: its `str()` in quotes.
pub fn write_dec(out: &mut Vec<u8>, value: Dec) {
    out.push(b'"');
    value.push_text(out);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::d;

    fn float(value: f64) -> String {
        let mut out = Vec::new();
        write_f64(&mut out, value);
        String::from_utf8(out).unwrap()
    }

    fn header() -> OrderHeader {
        OrderHeader {
            client_order_id: "tw-1".into(),
            signal_id: "s".into(),
            symbol: "EURUSD".into(),
            model_id: "m".into(),
            model_version: 1,
            event_at_ms: 5,
        }
    }

    /// One event of each type, every optional field set.
    fn one_of_each() -> Vec<Event> {
        vec![
            Event::Tick(Tick {
                symbol: "EURUSD".into(),
                time_ms: 1,
                seq: 0,
                bid: 1.1,
                ask: 1.2,
                last: 0.0,
                volume: 0.0,
                flags: 0,
                source: String::new(),
            }),
            Event::Signal(Signal {
                signal_id: "s".into(),
                symbol: "EURUSD".into(),
                timeframe: "1m".into(),
                bar_start_ms: 0,
                direction: Direction::Long,
                strength: 0.5,
                confidence: 0.75,
                model_id: "m".into(),
                model_version: 1,
                created_at_ms: 2,
                members: vec!["a:1".into(), "b:2".into()],
            }),
            Event::OrderIntent(OrderIntent {
                client_order_id: "tw-1".into(),
                signal_id: "s".into(),
                symbol: "EURUSD".into(),
                side: Side::Buy,
                quantity_lots: 1.0,
                order_type: OrderType::Market,
                model_id: "m".into(),
                model_version: 1,
                created_at_ms: 2,
                limit_price: None,
            }),
            Event::OrderSubmitted(OrderSubmitted {
                header: header(),
                side: Side::Sell,
                quantity_lots: 0.5,
                order_type: OrderType::Limit,
                limit_price: Some(1.25),
                venue: Some("paper".into()),
            }),
            Event::OrderAccepted(OrderAccepted {
                header: header(),
                broker_order_id: "paper-1".into(),
            }),
            Event::OrderRejected(OrderRejected {
                header: header(),
                reason: "no".into(),
                broker_code: Some(10016),
            }),
            Event::OrderFilled(OrderFilled {
                header: header(),
                fill_id: "f".into(),
                fill_price: 1.25,
                fill_lots: 0.5,
                cumulative_lots: 0.5,
                is_final: true,
            }),
            Event::OrderCanceled(OrderCanceled {
                header: header(),
                reason: "halt".into(),
            }),
            Event::OrderDenied(OrderDenied {
                header: header(),
                reason: "r".into(),
                check: "c".into(),
            }),
            Event::Fill(Box::new(Fill {
                fill_id: "f".into(),
                client_order_id: "tw-1".into(),
                signal_id: "s".into(),
                symbol: "EURUSD".into(),
                side: Side::Buy,
                price: 1.25,
                quantity_lots: 0.5,
                commission: 0.0,
                filled_at_ms: 7,
                model_id: "m".into(),
                model_version: 1,
                broker_deal_id: String::new(),
                position_before_lots: Some(d("0")),
                position_after_lots: Some(d("0.5")),
                entry_value_after: Some(d("0.625")),
                realized_pnl_quote: Some(d("0.0")),
                realized_pnl_account: Some(None),
                round_trip_id: Some("f".into()),
                opens_round_trip_id: Some(String::new()),
            })),
            Event::RiskEvent(RiskEvent {
                risk_event_id: "r".into(),
                kind: "started".into(),
                severity: Severity::Info,
                trading_state: TradingState::Active,
                detail: String::new(),
                occurred_at_ms: 0,
                symbol: String::new(),
                check: String::new(),
            }),
            Event::ControlCommand(ControlCommand {
                command_id: "c".into(),
                command: Command::SetLimit,
                issued_by: "ops".into(),
                issued_at_ms: 3,
                reason: String::new(),
                symbol: String::new(),
                params: vec![("name".into(), "max".into()), ("value".into(), "2".into())],
            }),
        ]
    }

    /// The top-level keys of an encoded object, in order (the test events hold no `":` in values).
    fn keys(json: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut depth = 0;
        let mut in_string = false;
        let mut escaped = false;
        let mut current = String::new();
        let mut after_open_or_comma = false;
        for ch in json.chars() {
            if in_string {
                if escaped {
                    escaped = false;
                } else if ch == '\\' {
                    escaped = true;
                } else if ch == '"' {
                    in_string = false;
                    if after_open_or_comma && depth == 1 {
                        keys.push(current.clone());
                    }
                    after_open_or_comma = false;
                    continue;
                }
                current.push(ch);
                continue;
            }
            match ch {
                '"' => {
                    in_string = true;
                    current.clear();
                }
                '{' | '[' => {
                    depth += 1;
                    after_open_or_comma = ch == '{';
                }
                '}' | ']' => depth -= 1,
                ',' => after_open_or_comma = true,
                _ => after_open_or_comma = false,
            }
        }
        keys
    }

    #[test]
    fn each_type_writes_its_tag_then_its_schemas_fields_in_order() {
        let events = one_of_each();
        assert_eq!(events.len(), SCHEMA.len());
        for (at, event) in events.iter().enumerate() {
            assert_eq!(event.kind(), at);
            let json = String::from_utf8(event.encode()).unwrap();
            let mut expected = vec!["type".to_owned()];
            expected.extend(SCHEMA[at].fields.iter().map(|f| f.to_string()));
            assert_eq!(keys(&json), expected, "{json}");
            assert!(json.starts_with(&format!("{{\"type\":\"{}\"", event.tag())));
        }
    }

    #[test]
    fn an_order_event_encodes_as_the_journal_writes_it() {
        let event = &one_of_each()[kind::ORDER_SUBMITTED];
        assert_eq!(
            String::from_utf8(event.encode()).unwrap(),
            "{\"type\":\"order_submitted.v1\",\"client_order_id\":\"tw-1\",\"signal_id\":\"s\",\
             \"symbol\":\"EURUSD\",\"model_id\":\"m\",\"model_version\":1,\"event_at_ms\":5,\
             \"side\":\"sell\",\"quantity_lots\":0.5,\"order_type\":\"limit\",\"limit_price\":1.25,\
             \"venue\":\"paper\"}"
        );
    }

    #[test]
    fn unset_fields_are_absent_and_none_is_null() {
        let Event::Fill(mut fill) = one_of_each()[kind::FILL].clone() else {
            unreachable!()
        };
        let booked = String::from_utf8(Event::Fill(fill.clone()).encode()).unwrap();
        assert!(booked.contains(
            "\"broker_deal_id\":\"\",\"position_before_lots\":\"0\",\"position_after_lots\":\"0.5\""
        ));
        assert!(booked.contains("\"realized_pnl_account\":null,\"round_trip_id\":\"f\""));
        fill.position_before_lots = None;
        fill.position_after_lots = None;
        fill.entry_value_after = None;
        fill.realized_pnl_quote = None;
        fill.realized_pnl_account = None;
        fill.round_trip_id = None;
        fill.opens_round_trip_id = None;
        let unbooked = String::from_utf8(Event::Fill(fill).encode()).unwrap();
        assert!(unbooked.ends_with("\"model_version\":1,\"broker_deal_id\":\"\"}"));
        let Event::OrderSubmitted(mut submitted) = one_of_each()[kind::ORDER_SUBMITTED].clone()
        else {
            unreachable!()
        };
        submitted.venue = None;
        submitted.limit_price = None;
        let text = String::from_utf8(Event::OrderSubmitted(submitted).encode()).unwrap();
        assert!(text.ends_with("\"order_type\":\"limit\",\"limit_price\":null}"));
    }

    #[test]
    fn floats_are_written_as_msgspec_writes_them() {
        for (value, text) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-0.0, "-0.0"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e16"),
            (1.5e16, "1.5e16"),
            (1.2345678901234568e17, "1.2345678901234568e17"),
            (1e-5, "0.00001"),
            (9.87654321012345e-5, "0.0000987654321012345"),
            (1e-6, "1e-6"),
            (1.2345e-7, "1.2345e-7"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e308"),
            (1.1001350040000002, "1.1001350040000002"),
            (8_796_093_022_208.312, "8796093022208.312"),
            (12345.0, "12345.0"),
            (-98765.4321012345, "-98765.4321012345"),
            (f64::NAN, "null"),
            (f64::INFINITY, "null"),
            (f64::NEG_INFINITY, "null"),
        ] {
            assert_eq!(float(value), text, "{value:e}");
        }
    }

    #[test]
    fn strings_escape_quotes_backslashes_and_control_characters_only() {
        let mut out = Vec::new();
        write_str(
            &mut out,
            "a\"b\\c\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f}é😀\u{2028}",
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0000\\u001f\u{7f}é😀\u{2028}\""
        );
    }

    #[test]
    fn a_string_is_escaped_the_same_whichever_word_its_bytes_fall_in() {
        let escaped = |text: &str| -> String {
            let mut plain = String::from("\"");
            for c in text.chars() {
                match c {
                    '"' => plain.push_str("\\\""),
                    '\\' => plain.push_str("\\\\"),
                    '\n' => plain.push_str("\\n"),
                    '\r' => plain.push_str("\\r"),
                    '\t' => plain.push_str("\\t"),
                    '\u{8}' => plain.push_str("\\b"),
                    '\u{c}' => plain.push_str("\\f"),
                    c if (c as u32) < 0x20 => plain.push_str(&format!("\\u{:04x}", c as u32)),
                    c => plain.push(c),
                }
            }
            plain.push('"');
            plain
        };
        let specials = (0u8..0x80)
            .map(char::from)
            .chain(['é', '😀', '\u{2028}', '\u{7f}']);
        for special in specials {
            for at in 0..18 {
                let text: String = (0..20)
                    .map(|i| if i == at { special } else { 'k' })
                    .collect();
                let mut out = Vec::new();
                write_str(&mut out, &text);
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    escaped(&text),
                    "{special:?} at {at}"
                );
            }
        }
    }

    #[test]
    fn no_schema_tag_or_field_needs_escaping() {
        for schema in &SCHEMA {
            for text in std::iter::once(&schema.tag).chain(schema.fields.iter()) {
                let mut out = Vec::new();
                write_str(&mut out, text);
                assert_eq!(out, format!("\"{text}\"").into_bytes());
            }
        }
    }

    #[test]
    fn integers_and_decimals_are_written_in_full() {
        let mut out = Vec::new();
        write_i64(&mut out, i64::MIN);
        out.push(b' ');
        write_dec(&mut out, d("1E+5"));
        out.push(b' ');
        write_dec(&mut out, d("0E-18"));
        out.push(b' ');
        write_dec(&mut out, d("-0.000001"));
        out.push(b' ');
        write_dec(&mut out, d("0.0000001"));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "-9223372036854775808 \"1E+5\" \"0E-18\" \"-0.000001\" \"1E-7\""
        );
    }

    #[test]
    fn the_chain_links_only_order_events_over_their_bytes() {
        let events = one_of_each();
        let (head, seq) = chain_extend(chain::GENESIS_HASH, 0, &events);
        let chained: Vec<Vec<u8>> = events
            .iter()
            .filter(|e| e.is_chained())
            .map(Event::encode)
            .collect();
        assert_eq!(chained.len(), 6);
        let expected = chain::extend(chain::GENESIS_HASH, 0, chained.iter().map(Vec::as_slice));
        assert_eq!((head, seq), expected);
    }

    #[test]
    fn enums_read_back_from_their_wire_names() {
        for side in Side::ALL {
            assert_eq!(Side::from_name(side.name()), Some(*side));
        }
        for command in Command::ALL {
            assert_eq!(Command::from_name(command.name()), Some(*command));
        }
        assert_eq!(TradingState::from_name("active"), None);
        assert_eq!(Direction::from_name("flat"), Some(Direction::Flat));
    }
}
