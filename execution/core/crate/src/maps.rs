//! The core's hash maps and sets: the standard ones with foldhash's fast hash, seeded at random per
//! process and per map (`foldhash::fast::RandomState`), in place of the standard keyed SipHash.
//!
//! Their keys are symbols of the instruments table, currencies, trading days and the engine's own
//! order ids (BLAKE2b digests, `ids.rs`): none is text an unauthenticated producer chooses as it
//! likes. Text that is (a signal's id, an operator command's id) stays in the standard keyed maps
//! (`EngineState`'s decided and applied ids); numbers in bounded caches have `NumberMap`.

pub use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
