//! Benchmarks live under `benches/`.
//!
//! The library holds what the context benches share: the pydantic corpus and its questions
//! ([`context_corpus`]), the grep-and-read baseline ([`grep_baseline`]), the synthetic store
//! generator ([`synthetic_sections`]) and a reranker that is another program ([`rerank_command`]).

pub mod context_corpus;
pub mod grep_baseline;
pub mod rerank_command;
pub mod synthetic_sections;
