//! Benchmarks live under `benches/`.
//!
//! The library holds what the context benches share: the pydantic corpus and its questions
//! ([`context_corpus`]), the grep-and-read baseline ([`grep_baseline`]) and the synthetic store
//! generator ([`synthetic_sections`]).

pub mod context_corpus;
pub mod grep_baseline;
pub mod synthetic_sections;
