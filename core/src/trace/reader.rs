//! Reading a trace back: streaming records, queries, and each run's tree of spans.
