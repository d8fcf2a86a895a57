//! A trace sink into PostgreSQL: every process of a fleet writes its events to one table.
//!
//! Records arrive in the Tracer's writer thread in batches; each batch is one multi-row `INSERT`
//! (one round trip, one transaction), so a crash loses no half batch. Each row keeps the record's
//! run, agent, task, kind and time as columns (to query the fleet with SQL) and the whole record
//! as JSON. The local trace file stays the tamper-evident record; this table is for looking
//! across machines.

use std::sync::Arc;

use crate::store::PostgresStore;
use crate::trace::err::TraceError;
use crate::trace::sink::Sink;
use crate::trace::TraceRecord;

/// The most rows in one `INSERT` (PostgreSQL takes at most 65,535 parameters; a row has 7).
const MAX_ROWS: usize = 1_000;

/// A [`Sink`] that inserts records into `fourfold_trace` on the fleet's PostgreSQL server.
pub struct PostgresTraceSink {
    store: Arc<PostgresStore>,
    pending: Vec<TraceRecord>,
}

impl PostgresTraceSink {
    /// A sink into `store`'s database.
    pub fn new(store: Arc<PostgresStore>) -> PostgresTraceSink {
        PostgresTraceSink {
            store,
            pending: Vec::new(),
        }
    }

    fn insert(&mut self) -> Result<(), TraceError> {
        for chunk in self.pending.chunks(MAX_ROWS) {
            let rows: Vec<Row> = chunk.iter().map(Row::of).collect();
            let mut sql = String::from(
                "INSERT INTO fourfold_trace (run_id, agent_id, task_id, kind, seq, at_ns, record) VALUES ",
            );
            let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> =
                Vec::with_capacity(rows.len() * 7);
            for (row_idx, row) in rows.iter().enumerate() {
                let base = row_idx * 7;
                if row_idx > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${}::text::jsonb)",
                    base + 1,
                    base + 2,
                    base + 3,
                    base + 4,
                    base + 5,
                    base + 6,
                    base + 7
                ));
                params.extend([
                    &row.run_id as &(dyn postgres::types::ToSql + Sync),
                    &row.agent_id,
                    &row.task_id,
                    &row.kind,
                    &row.seq,
                    &row.at_ns,
                    &row.record,
                ]);
            }
            let mut client = self.store.client().map_err(|error| TraceError::Sink {
                reason: error.to_string(),
            })?;
            client
                .execute(sql.as_str(), &params)
                .map_err(|error| TraceError::Sink {
                    reason: self.store.failed(error).to_string(),
                })?;
        }
        self.pending.clear();
        Ok(())
    }
}

/// A record's columns.
struct Row {
    run_id: Option<String>,
    agent_id: Option<String>,
    task_id: Option<String>,
    kind: String,
    seq: Option<i64>,
    at_ns: i64,
    record: String,
}

impl Row {
    fn of(record: &TraceRecord) -> Row {
        let to_sql = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        // INVARIANT: records are plain serde data, which serde_json always encodes.
        let json = serde_json::to_string(record).unwrap_or_default();
        match record {
            TraceRecord::Event(event) => Row {
                run_id: Some(event.run_id.clone()),
                agent_id: Some(event.agent_id.clone()),
                task_id: event.task_id.clone(),
                kind: event.kind.name().to_string(),
                seq: Some(to_sql(event.seq)),
                at_ns: to_sql(event.timestamp_ns),
                record: json,
            },
            TraceRecord::SpanStart {
                run_id,
                agent_id,
                task_id,
                at_ns,
                ..
            } => Row {
                run_id: Some(run_id.clone()),
                agent_id: Some(agent_id.clone()),
                task_id: task_id.clone(),
                kind: "span_start".into(),
                seq: None,
                at_ns: to_sql(*at_ns),
                record: json,
            },
            TraceRecord::SpanEnd { run_id, at_ns, .. } => Row {
                run_id: Some(run_id.clone()),
                agent_id: None,
                task_id: None,
                kind: "span_end".into(),
                seq: None,
                at_ns: to_sql(*at_ns),
                record: json,
            },
            TraceRecord::Dropped { at_ns, .. } => Row {
                run_id: None,
                agent_id: None,
                task_id: None,
                kind: "dropped".into(),
                seq: None,
                at_ns: to_sql(*at_ns),
                record: json,
            },
        }
    }
}

impl Sink for PostgresTraceSink {
    fn write(&mut self, record: &TraceRecord) -> Result<(), TraceError> {
        self.pending.push(record.clone());
        if self.pending.len() >= MAX_ROWS {
            self.insert()?;
        }
        Ok(())
    }

    fn write_batch(&mut self, records: &[TraceRecord]) -> Result<(), TraceError> {
        self.pending.extend_from_slice(records);
        self.insert()
    }

    fn flush(&mut self) -> Result<(), TraceError> {
        self.insert()
    }
}

impl Drop for PostgresTraceSink {
    fn drop(&mut self) {
        // A drop cannot report a failure; flush the Tracer to see one.
        let _ = self.insert();
    }
}
