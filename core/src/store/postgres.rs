//! The storage trait on PostgreSQL: one store that every process of a fleet shares.
//!
//! Records live in one table, `fourfold_kv (namespace, key, value)`. `compare_and_swap` is a single
//! conditional statement, so an approval changes state once fleet-wide however many processes
//! race for it. The schema is versioned in `fourfold_migrations` and brought up to date on first
//! connect, under an advisory lock so that processes starting together do not race either.
//! Connections come from an `r2d2` pool: a connection the server dropped fails its operation with
//! a [`DatabaseError`] that says the connection was the cause (nothing half-written: every
//! operation is one statement or one transaction), and the pool replaces it for the next call.
//! Each connection keeps the statements prepared on it, so that a statement on the hot paths
//! (a budget's reservation and commit) costs one round trip instead of two.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, Row, Statement};
use postgres::{Config, NoTls};
use r2d2::{ManageConnection, Pool, PooledConnection};
use r2d2_postgres::PostgresConnectionManager;
use rustc_hash::FxHashMap;

use super::{validate_key, Store};
use crate::error::{DatabaseError, StoreError};

/// A pooled connection and the statements prepared on it, by their text.
///
/// It dereferences to its [`Client`]; [`Connection::prepared`] gives a statement prepared once
/// per connection (a statement is bound to the session it was prepared in, so the cache goes
/// with the connection and a replaced connection starts empty).
pub(crate) struct Connection {
    client: Client,
    statements: FxHashMap<&'static str, Statement>,
}

impl Connection {
    /// `sql`, prepared on this connection the first time it is asked for.
    pub(crate) fn prepared(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    /// [`Client::query`] with `sql` prepared once per connection.
    pub(crate) fn query_cached(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        let statement = self.prepared(sql)?;
        self.client.query(&statement, params)
    }

    /// [`Client::query_opt`] with `sql` prepared once per connection.
    pub(crate) fn query_opt_cached(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, postgres::Error> {
        let statement = self.prepared(sql)?;
        self.client.query_opt(&statement, params)
    }

    /// [`Client::execute`] with `sql` prepared once per connection.
    pub(crate) fn execute_cached(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        let statement = self.prepared(sql)?;
        self.client.execute(&statement, params)
    }
}

impl Deref for Connection {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for Connection {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// r2d2_postgres's manager, giving connections with a statement cache.
#[derive(Debug)]
pub(crate) struct Manager(PostgresConnectionManager<NoTls>);

impl ManageConnection for Manager {
    type Connection = Connection;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Connection, postgres::Error> {
        Ok(Connection {
            client: self.0.connect()?,
            statements: FxHashMap::default(),
        })
    }

    fn is_valid(&self, connection: &mut Connection) -> Result<(), postgres::Error> {
        self.0.is_valid(&mut connection.client)
    }

    fn has_broken(&self, connection: &mut Connection) -> bool {
        self.0.has_broken(&mut connection.client)
    }
}

/// The schema, one migration per version, applied in order and never edited once released.
pub(crate) const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "CREATE TABLE fourfold_kv (
            namespace text NOT NULL,
            key text NOT NULL,
            value bytea NOT NULL,
            PRIMARY KEY (namespace, key)
        )",
    ),
    (
        2,
        "CREATE TABLE fourfold_budget (
            name text PRIMARY KEY,
            hard bigint NOT NULL CHECK (hard >= 0),
            spent bigint NOT NULL DEFAULT 0,
            reserved bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0)
        );
        CREATE TABLE fourfold_reservation (
            id bigserial PRIMARY KEY,
            budget text NOT NULL REFERENCES fourfold_budget (name) ON DELETE CASCADE,
            amount bigint NOT NULL CHECK (amount >= 0),
            holder text NOT NULL,
            expires_at timestamptz NOT NULL
        );
        CREATE INDEX fourfold_reservation_expiry ON fourfold_reservation (budget, expires_at)",
    ),
    (
        3,
        "CREATE TABLE fourfold_document_log (
            seq bigserial PRIMARY KEY,
            key text NOT NULL,
            text text,
            at timestamptz NOT NULL DEFAULT now()
        )",
    ),
    (
        4,
        "CREATE TABLE fourfold_trace (
            id bigserial PRIMARY KEY,
            run_id text,
            agent_id text,
            task_id text,
            kind text NOT NULL,
            seq bigint,
            at_ns bigint NOT NULL,
            record jsonb NOT NULL
        );
        CREATE INDEX fourfold_trace_run ON fourfold_trace (run_id, id);
        CREATE INDEX fourfold_trace_agent ON fourfold_trace (agent_id, at_ns)",
    ),
    (
        5,
        // The folder a document was ingested from, so that an ingest of the folder later retires
        // the documents whose files are gone, and only those.
        "ALTER TABLE fourfold_document_log ADD COLUMN source text",
    ),
    (
        6,
        // A shared budget's rolling window (none: its lifetime) and its spend in buckets of a
        // sixtieth of the window, by bucket number (see `cost::fleet`).
        // The two functions keep the statements that use them short: PL/pgSQL plans its queries
        // once per connection, where the same SQL inline was planned on every statement.
        "ALTER TABLE fourfold_budget
            ADD COLUMN window_ms bigint CHECK (window_ms > 0),
            ADD COLUMN buckets jsonb NOT NULL DEFAULT '{}'::jsonb;
        CREATE FUNCTION fourfold_counted_spend(p_spent bigint, p_window_ms bigint, p_buckets jsonb)
        RETURNS bigint LANGUAGE plpgsql STABLE AS $$
        BEGIN
            IF p_window_ms IS NULL THEN
                RETURN p_spent;
            END IF;
            RETURN (
                SELECT coalesce(sum(bucket.amount::bigint), 0)::bigint
                FROM jsonb_each_text(p_buckets) AS bucket(number, amount)
                WHERE bucket.number::bigint >= ((extract(epoch FROM now()) * 1000)::bigint - p_window_ms)
                    / greatest(p_window_ms / 60, 1)
            );
        END $$;
        CREATE FUNCTION fourfold_add_to_buckets(p_buckets jsonb, p_window_ms bigint, p_amount bigint)
        RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
        DECLARE
            bucket_ms bigint;
            first bigint;
        BEGIN
            IF p_window_ms IS NULL THEN
                RETURN p_buckets;
            END IF;
            bucket_ms := greatest(p_window_ms / 60, 1);
            first := ((extract(epoch FROM now()) * 1000)::bigint - p_window_ms) / bucket_ms;
            RETURN (
                SELECT coalesce(jsonb_object_agg(part.number, part.amount), '{}'::jsonb)
                FROM (
                    SELECT number, sum(amount)::bigint AS amount FROM (
                        SELECT bucket.number, bucket.amount::bigint AS amount
                        FROM jsonb_each_text(p_buckets) AS bucket(number, amount)
                        UNION ALL
                        SELECT (((extract(epoch FROM now()) * 1000)::bigint) / bucket_ms)::text, p_amount
                    ) AS parts
                    WHERE number::bigint >= first
                    GROUP BY number
                ) AS part
            );
        END $$",
    ),
];

/// A key for `pg_advisory_xact_lock` while migrating ("ffld").
const MIGRATION_LOCK: i64 = 0x6666_6c64;

/// A [`Store`] on a PostgreSQL server, shared by every process that connects to it.
pub struct PostgresStore {
    pool: Pool<Manager>,
    target: String,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .finish()
    }
}

impl PostgresStore {
    /// Connects to the server at `url` (`postgresql://user@host:5432/db`, or the key-value form
    /// `host=/run/postgresql dbname=fourfold`) and brings its schema up to date.
    pub fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let config: Config = url.parse().map_err(|error: postgres::Error| {
            DatabaseError::new(&shown(url), error.to_string(), false)
        })?;
        let target = describe(&config);
        let pool = Pool::builder()
            .max_size(8)
            .min_idle(Some(1))
            // No health query on every checkout (a round trip per call): a connection the server
            // dropped fails one call with a connection error and is then replaced.
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(10))
            .build(Manager(PostgresConnectionManager::new(config, NoTls)))
            .map_err(|error| DatabaseError::new(&target, error.to_string(), true))?;
        let store = PostgresStore { pool, target };
        store.migrate()?;
        Ok(store)
    }

    /// The server, as shown in errors (host, port and database; never the password).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// A pooled connection; a dead one is replaced by the pool.
    pub(crate) fn client(&self) -> Result<PooledConnection<Manager>, StoreError> {
        self.pool
            .get()
            .map_err(|error| DatabaseError::new(&self.target, error.to_string(), true).into())
    }

    /// A [`DatabaseError`] for a failed statement.
    pub(crate) fn failed(&self, error: postgres::Error) -> StoreError {
        // Class 08 is a connection exception; 57P01 to 57P03 are the server shutting the
        // connection (an administrator, a crash, a restart).
        let code = error.code().map(|code| code.code());
        let connection = error.is_closed()
            || caused_by_io(&error)
            || code.is_some_and(|code| code.starts_with("08") || code.starts_with("57P0"));
        let reason = match error.as_db_error() {
            Some(db_error) => db_error.message().to_string(),
            None => error.to_string(),
        };
        DatabaseError::new(&self.target, reason, connection).into()
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client()?;
        let mut transaction = client.transaction().map_err(|error| self.failed(error))?;
        transaction
            .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(|error| self.failed(error))?;
        transaction
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS fourfold_migrations (
                    version integer PRIMARY KEY,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )",
            )
            .map_err(|error| self.failed(error))?;
        let applied: i32 = transaction
            .query_one(
                "SELECT coalesce(max(version), 0) FROM fourfold_migrations",
                &[],
            )
            .map_err(|error| self.failed(error))?
            .get(0);
        let newest = MIGRATIONS.last().map_or(0, |(version, _)| *version);
        if applied > newest {
            return Err(DatabaseError::new(
                &self.target,
                format!(
                    "the schema is at version {applied}, newer than this fourfold knows ({newest}); upgrade fourfold"
                ),
                false,
            )
            .into());
        }
        for (version, statements) in MIGRATIONS.iter().filter(|(version, _)| *version > applied) {
            transaction
                .batch_execute(statements)
                .map_err(|error| self.failed(error))?;
            transaction
                .execute(
                    "INSERT INTO fourfold_migrations (version) VALUES ($1)",
                    &[version],
                )
                .map_err(|error| self.failed(error))?;
        }
        transaction.commit().map_err(|error| self.failed(error))
    }
}

/// Whether an I/O error is behind `error` (the connection failed, not the statement).
fn caused_by_io(error: &postgres::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// `url` without a password, for errors.
fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => url
            .split_whitespace()
            .filter(|part| !part.starts_with("password="))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

fn describe(config: &Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|host| match host {
            postgres::config::Host::Tcp(name) => name.clone(),
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let database = config.get_dbname().unwrap_or("postgres");
    format!("postgresql://{host}:{port}/{database}")
}

fn check_keys(namespace: &str, key: Option<&str>) -> Result<(), StoreError> {
    validate_key(namespace)?;
    if let Some(key) = key {
        validate_key(key)?;
    }
    Ok(())
}

impl Store for PostgresStore {
    fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_keys(namespace, Some(key))?;
        let row = self
            .client()?
            .query_opt_cached(
                "SELECT value FROM fourfold_kv WHERE namespace = $1 AND key = $2",
                &[&namespace, &key],
            )
            .map_err(|error| self.failed(error))?;
        Ok(row.map(|row| row.get(0)))
    }

    fn put(&self, namespace: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        check_keys(namespace, Some(key))?;
        self.client()?
            .query_cached(
                "WITH written AS (
                    INSERT INTO fourfold_kv (namespace, key, value) VALUES ($1, $2, $3)
                    ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value
                    RETURNING 1
                 )
                 SELECT pg_notify('fourfold_kv', $1 || '/' || $2) FROM written",
                &[&namespace, &key, &value],
            )
            .map_err(|error| self.failed(error))?;
        Ok(())
    }

    /// Reads only the prefix off the server (`substring`), with the value's length.
    fn get_prefix(
        &self,
        namespace: &str,
        key: &str,
        len: usize,
    ) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        check_keys(namespace, Some(key))?;
        // A value in PostgreSQL is at most 1 GiB: a longer prefix is all of it.
        let len = i32::try_from(len).unwrap_or(i32::MAX);
        let row = self
            .client()?
            .query_opt_cached(
                "SELECT substring(value FROM 1 FOR $3), length(value)
                 FROM fourfold_kv WHERE namespace = $1 AND key = $2",
                &[&namespace, &key, &len],
            )
            .map_err(|error| self.failed(error))?;
        Ok(row.map(|row| {
            let whole: i32 = row.get(1);
            (row.get(0), u64::try_from(whole).unwrap_or(0))
        }))
    }

    /// Copies on the server, in one statement: the value does not travel.
    fn copy(&self, namespace: &str, from: &str, to: &str) -> Result<bool, StoreError> {
        check_keys(namespace, Some(from))?;
        validate_key(to)?;
        let rows = self
            .client()?
            .query_cached(
                "WITH copied AS (
                    INSERT INTO fourfold_kv (namespace, key, value)
                    SELECT namespace, $3, value FROM fourfold_kv
                    WHERE namespace = $1 AND key = $2
                    ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value
                    RETURNING 1
                 )
                 SELECT pg_notify('fourfold_kv', $1 || '/' || $3) FROM copied",
                &[&namespace, &from, &to],
            )
            .map_err(|error| self.failed(error))?;
        Ok(!rows.is_empty())
    }

    fn delete(&self, namespace: &str, key: &str) -> Result<bool, StoreError> {
        check_keys(namespace, Some(key))?;
        let rows = self
            .client()?
            .query_cached(
                "WITH deleted AS (
                    DELETE FROM fourfold_kv WHERE namespace = $1 AND key = $2 RETURNING 1
                 )
                 SELECT pg_notify('fourfold_kv', $1 || '/' || $2) FROM deleted",
                &[&namespace, &key],
            )
            .map_err(|error| self.failed(error))?;
        Ok(!rows.is_empty())
    }

    fn list(&self, namespace: &str) -> Result<Vec<String>, StoreError> {
        check_keys(namespace, None)?;
        let rows = self
            .client()?
            .query_cached(
                "SELECT key FROM fourfold_kv WHERE namespace = $1 ORDER BY key",
                &[&namespace],
            )
            .map_err(|error| self.failed(error))?;
        Ok(rows.into_iter().map(|row| row.get(0)).collect())
    }

    fn compare_and_swap(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        check_keys(namespace, Some(key))?;
        let mut client = self.client()?;
        // INVARIANT: each arm is one statement, so the swap is atomic on the server; a swap that
        // happened notifies `fourfold_kv` (delivered when it commits) for `wait_for_change`.
        let result = match (expected, new) {
            (None, None) => client
                .query_opt_cached(
                    "SELECT 1 FROM fourfold_kv WHERE namespace = $1 AND key = $2",
                    &[&namespace, &key],
                )
                .map(|row| u64::from(row.is_none())),
            (None, Some(new)) => client
                .query_cached(
                    "WITH swapped AS (
                        INSERT INTO fourfold_kv (namespace, key, value) VALUES ($1, $2, $3)
                        ON CONFLICT (namespace, key) DO NOTHING RETURNING 1
                     )
                     SELECT pg_notify('fourfold_kv', $1 || '/' || $2) FROM swapped",
                    &[&namespace, &key, &new],
                )
                .map(|rows| rows.len() as u64),
            (Some(expected), Some(new)) => client
                .query_cached(
                    "WITH swapped AS (
                        UPDATE fourfold_kv SET value = $4
                        WHERE namespace = $1 AND key = $2 AND value = $3 RETURNING 1
                     )
                     SELECT pg_notify('fourfold_kv', $1 || '/' || $2) FROM swapped",
                    &[&namespace, &key, &expected, &new],
                )
                .map(|rows| rows.len() as u64),
            (Some(expected), None) => client
                .query_cached(
                    "WITH swapped AS (
                        DELETE FROM fourfold_kv
                        WHERE namespace = $1 AND key = $2 AND value = $3 RETURNING 1
                     )
                     SELECT pg_notify('fourfold_kv', $1 || '/' || $2) FROM swapped",
                    &[&namespace, &key, &expected],
                )
                .map(|rows| rows.len() as u64),
        };
        match result {
            Ok(n_rows) => Ok(n_rows == 1),
            // Two inserts racing on one key: the loser's swap did not happen.
            Err(error) if error.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(false),
            Err(error) => Err(self.failed(error)),
        }
    }

    fn wait_for_change(
        &self,
        namespace: &str,
        key: &str,
        seen: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<(), StoreError> {
        check_keys(namespace, Some(key))?;
        let deadline = std::time::Instant::now() + timeout;
        let wanted = format!("{namespace}/{key}");
        let mut client = self.client()?;
        client
            .batch_execute("LISTEN fourfold_kv")
            .map_err(|error| self.failed(error))?;
        // Listening first, then reading: a change between the two cannot be missed.
        let waited = (|| -> Result<(), StoreError> {
            loop {
                let value: Option<Vec<u8>> = client
                    .query_opt(
                        "SELECT value FROM fourfold_kv WHERE namespace = $1 AND key = $2",
                        &[&namespace, &key],
                    )
                    .map_err(|error| self.failed(error))?
                    .map(|row| row.get(0));
                if value.as_deref() != seen {
                    return Ok(());
                }
                let now = std::time::Instant::now();
                if now >= deadline {
                    return Ok(());
                }
                // Wake on any notification for this record; look again at least every second.
                let mut notifications = client.notifications();
                let mut iter =
                    notifications.timeout_iter((deadline - now).min(Duration::from_secs(1)));
                while let Some(notification) = iter.next().map_err(|error| self.failed(error))? {
                    if notification.payload() == wanted || std::time::Instant::now() >= deadline {
                        break;
                    }
                }
            }
        })();
        // INVARIANT: the pooled connection stops listening before other work gets it.
        let _ = client.batch_execute("UNLISTEN fourfold_kv");
        waited
    }
}
