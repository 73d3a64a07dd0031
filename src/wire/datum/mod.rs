//! The safe datum reader and the R7RS `write` printer (PROTOCOL.md §2).
//!
//! The reader never evaluates and never interns: it accepts only exact integers (at most
//! `MAX_INTEGER_DIGITS` digits), strings, symbols, booleans, bytevectors and vectors, bounds
//! nesting (`MAX_DATUM_DEPTH`) and element counts (`MAX_DATUM_ELEMENTS`), and rejects anything
//! else (lists, characters, floats, quotes, comments) and trailing garbage. `Reader` is also the
//! cursor the message codec parses with, so messages are decoded without building `Datum`s.

mod read;
mod syntax;
#[cfg(test)]
mod tests;
mod write;

pub use read::read_datum;
pub(crate) use read::{Next, Reader};
#[allow(unused_imports)] // Datum and Integer: for tests and the benchmark
pub use syntax::{Datum, Integer, ReadError};
pub use write::write_datum;
pub(crate) use write::{write_bytevector, write_u64, write_uint_be};
