//! OpenTelemetry export: trace records as OTLP/JSON Lines with the GenAI semantic conventions.
