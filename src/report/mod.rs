//! Reports: what gcfuzz writes for people. One crash record per signature
//! ([`record`]), the regression `.wast` in Wasmtime's test-suite form
//! ([`regression`]), the nightly job's Markdown and HTML ([`nightly`]), and
//! the text a reproducer's replay prints ([`text`]).

pub mod nightly;
pub mod record;
pub mod regression;
pub mod text;
