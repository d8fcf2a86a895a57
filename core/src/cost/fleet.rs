//! Fleet budgets: limits that many processes on many machines spend against together, kept in
//! PostgreSQL.
//!
//! A reservation is one conditional statement on the budget's row: it adds the amount to
//! `reserved` only if `spent + reserved + amount` stays within `hard`, and records the reservation
//! with a lease. The row lock makes concurrent reservations queue, so no two processes can both
//! take the last of a budget. A process that dies holding a reservation does not hold it forever:
//! once its lease has passed, the next reservation against that budget sweeps it (and
//! [`FleetBudgets::expire`] sweeps every budget). Committing settles a reservation at the actual
//! amount, in one statement; spend whose reservation has expired is still recorded, because the
//! call it paid for happened.
//!
//! A budget with a rolling window limits what was spent in its last `window` instead of over its
//! lifetime. Its row keeps the spend in buckets of a sixtieth of the window each (a JSON object
//! from bucket number to amount, in the same row, so that a reservation is still one statement
//! on one row); a bucket counts until all of it has left the window, so the check errs toward
//! refusing, by at most one bucket's spend.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use super::err::{BudgetError, BudgetExceeded, CostError};
use super::shared::{FleetStanding, SharedBudgets};
use crate::store::postgres::Connection;
use crate::store::PostgresStore;
use crate::StoreError;

/// Budgets shared by every process connected to one PostgreSQL server.
#[derive(Clone, Debug)]
pub struct FleetBudgets {
    store: Arc<PostgresStore>,
    holder: String,
    lease: Duration,
}

/// An amount held against a fleet budget until it is committed, released, or its lease passes.
#[derive(Debug)]
#[must_use = "a fleet reservation holds its amount until committed, released or expired"]
pub struct FleetReservation {
    id: i64,
    budget: String,
    amount: u64,
}

impl FleetReservation {
    /// The budget it is held against.
    pub fn budget(&self) -> &str {
        &self.budget
    }

    /// The amount held.
    pub fn amount(&self) -> u64 {
        self.amount
    }
}

fn to_sql(amount: u64) -> Result<i64, CostError> {
    i64::try_from(amount).map_err(|_| {
        CostError::Usage(super::err::UsageError::Overflow(format!(
            "{amount} is more than a fleet budget can hold"
        )))
    })
}

fn from_sql(amount: i64) -> u64 {
    // INVARIANT: the schema's CHECK constraints keep hard, reserved and amounts non-negative;
    // spent only grows from non-negative commits.
    u64::try_from(amount).unwrap_or(0)
}

/// The SQL expression for what the budget row `row` counts against its hard limit: its lifetime
/// spend, or with a window, the spend of the buckets not wholly out of the window (by the
/// server's clock, so that every process agrees); `fourfold_counted_spend` is in the schema.
fn counted_spend(row: &str) -> String {
    format!(
        "CASE WHEN {row}.window_ms IS NULL THEN {row}.spent \
         ELSE fourfold_counted_spend({row}.spent, {row}.window_ms, {row}.buckets) END"
    )
}

/// The server's clock, in milliseconds since the epoch.
const NOW_MS: &str = "(extract(epoch FROM now()) * 1000)::bigint";

/// The SQL expression for `row`'s buckets once `amount` (a parameter) is added to the current
/// one, leaving out the buckets wholly out of the window (`fourfold_add_to_buckets`, in the
/// schema).
fn add_to_buckets(row: &str, amount: &str) -> String {
    format!(
        "CASE WHEN {row}.window_ms IS NULL THEN {row}.buckets \
         ELSE fourfold_add_to_buckets({row}.buckets, {row}.window_ms, {amount}::bigint) END"
    )
}

// The statements of the calls a fleet makes for every model call, built once and prepared once
// per pooled connection.

/// Holds `$2` for holder `$3` with a lease of `$4` ms against budget `$1` if it fits; returns
/// the reservation's id, or no row.
static RESERVE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH held AS (
            UPDATE fourfold_budget AS budget SET reserved = budget.reserved + $2
            WHERE budget.name = $1
              AND {spend} + budget.reserved + $2 <= budget.hard
            RETURNING budget.name
         )
         INSERT INTO fourfold_reservation (budget, amount, holder, expires_at)
         SELECT name, $2, $3, now() + $4::bigint * interval '1 millisecond' FROM held
         RETURNING id",
        spend = counted_spend("budget")
    )
});

/// Settles reservation `$1` of budget `$2` at `$3`; returns the budget's counted spend.
static COMMIT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH settled AS (
            DELETE FROM fourfold_reservation WHERE id = $1 RETURNING budget, amount
         ), updated AS (
            UPDATE fourfold_budget AS budget
            SET reserved = budget.reserved - coalesce((SELECT amount FROM settled), 0),
                spent = budget.spent + $3,
                buckets = {buckets}
            WHERE budget.name = $2
            RETURNING budget.*
         )
         SELECT {spend} FROM updated",
        buckets = add_to_buckets("budget", "$3"),
        spend = counted_spend("updated")
    )
});

/// Adds `$2` to budget `$1`'s spend; returns its counted spend.
static RECORD: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH updated AS (
            UPDATE fourfold_budget AS budget
            SET spent = budget.spent + $2, buckets = {buckets}
            WHERE budget.name = $1
            RETURNING budget.*
         )
         SELECT {spend} FROM updated",
        buckets = add_to_buckets("budget", "$2"),
        spend = counted_spend("updated")
    )
});

/// Budget `$1`'s limit, counted spend and reserved amount.
static STANDING: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT budget.hard, {spend}, budget.reserved FROM fourfold_budget AS budget
         WHERE budget.name = $1",
        spend = counted_spend("budget")
    )
});

/// Gives reservation `$1`'s amount back to its budget.
const RELEASE: &str = "WITH released AS (
        DELETE FROM fourfold_reservation WHERE id = $1 RETURNING budget, amount
     )
     UPDATE fourfold_budget AS budget SET reserved = budget.reserved - released.amount
     FROM released WHERE budget.name = released.budget";

/// Releases the expired reservations of budget `$1` (of every budget with null); returns how
/// many each budget had.
const SWEEP: &str = "WITH expired AS (
        DELETE FROM fourfold_reservation
        WHERE expires_at < now() AND ($1::text IS NULL OR budget = $1)
        RETURNING budget, amount
     ), totals AS (
        SELECT budget, sum(amount)::bigint AS amount, count(*) AS n FROM expired GROUP BY budget
     )
     UPDATE fourfold_budget AS budget SET reserved = budget.reserved - totals.amount
     FROM totals WHERE budget.name = totals.budget
     RETURNING totals.n";

impl FleetBudgets {
    /// Fleet budgets in `store`'s database. Reservations are held for `lease` (60 s by default)
    /// and name this process (`host:pid`) as their holder.
    pub fn new(store: Arc<PostgresStore>) -> FleetBudgets {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
        FleetBudgets {
            store,
            holder: format!("{host}:{}", std::process::id()),
            lease: Duration::from_secs(60),
        }
    }

    /// How long a reservation is held before a process that did not settle it is presumed dead.
    pub fn lease(mut self, lease: Duration) -> FleetBudgets {
        self.lease = lease;
        self
    }

    /// Creates budget `name` with limit `hard` over its lifetime, or changes the limit of an
    /// existing one (what was spent and reserved stays).
    pub fn define(&self, name: &str, hard: u64) -> Result<(), CostError> {
        self.define_window(name, hard, None)
    }

    /// Creates budget `name` with limit `hard` over the last `window` (over its lifetime with
    /// `None`), or changes the limit and window of an existing one. What was spent and reserved
    /// stays; spend from before a budget had a window does not count in it, and what a window
    /// counted when it changes length counts for a whole window of the new length. A window
    /// under a millisecond is an error.
    pub fn define_window(
        &self,
        name: &str,
        hard: u64,
        window: Option<Duration>,
    ) -> Result<(), CostError> {
        let hard = to_sql(hard)?;
        let window_ms = match window {
            Some(window) => Some(
                i64::try_from(window.as_millis())
                    .ok()
                    .filter(|ms| *ms > 0)
                    .ok_or_else(|| BudgetError::EmptyWindow(format!("fleet:{name}")))?,
            ),
            None => None,
        };
        // A window of another length numbers its buckets differently: what the old buckets hold
        // moves into the current bucket of the new window, where it counts a whole window more.
        self.store
            .client()?
            .execute(
                &format!(
                    "INSERT INTO fourfold_budget AS budget (name, hard, window_ms) VALUES ($1, $2, $3)
                     ON CONFLICT (name) DO UPDATE SET
                        hard = excluded.hard,
                        window_ms = excluded.window_ms,
                        buckets = CASE
                            WHEN excluded.window_ms IS NULL OR budget.window_ms IS NULL THEN '{{}}'::jsonb
                            WHEN excluded.window_ms = budget.window_ms THEN budget.buckets
                            ELSE (
                                SELECT CASE WHEN count(*) = 0 THEN '{{}}'::jsonb ELSE jsonb_build_object(
                                    ({NOW_MS} / greatest(excluded.window_ms / 60, 1))::text,
                                    sum(bucket.amount::bigint)
                                ) END
                                FROM jsonb_each_text(budget.buckets) AS bucket(number, amount)
                            )
                        END"
                ),
                &[&name, &hard, &window_ms],
            )
            .map_err(|error| self.store.failed(error))?;
        Ok(())
    }

    /// Holds `amount` against budget `name`, or fails with [`CostError::Exceeded`] (holding
    /// nothing) if that would take spent plus reserved past the hard limit.
    pub fn reserve(&self, name: &str, amount: u64) -> Result<FleetReservation, CostError> {
        let sql_amount = to_sql(amount)?;
        let lease_ms = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX);
        let mut client = self.store.client()?;
        // Expired holds matter only when they are in the way: on a refusal, sweep them and try
        // once more.
        for attempt in 0..2 {
            if attempt == 1 && self.sweep(&mut client, Some(name))? == 0 {
                break;
            }
            // INVARIANT: one statement: the UPDATE takes the budget row's lock, so concurrent
            // reservations of the same budget see each other's `reserved`.
            // A window's spend is computed from the row itself, so a reservation that waited for
            // the lock checks the row as the statement before it left it.
            let row = client
                .query_opt_cached(
                    RESERVE.as_str(),
                    &[&name, &sql_amount, &self.holder, &lease_ms],
                )
                .map_err(|error| self.store.failed(error))?;
            if let Some(row) = row {
                return Ok(FleetReservation {
                    id: row.get(0),
                    budget: name.to_string(),
                    amount,
                });
            }
        }
        // INVARIANT: the connection goes back to the pool before `exceeded` takes one, so that
        // threads never wait on the pool while holding a connection.
        drop(client);
        Err(self.exceeded(name, amount)?)
    }

    /// Settles `reservation` at `actual` (more or less than was held): the hold is released and
    /// `actual` is added to what was spent. If the lease had passed and the hold was swept,
    /// `actual` is still recorded. Returns what the budget has spent now, this commit included
    /// (0 if it is not defined).
    pub fn commit(&self, reservation: FleetReservation, actual: u64) -> Result<u64, CostError> {
        let actual = to_sql(actual)?;
        // INVARIANT: one statement, so releasing the hold and adding the spend happen together,
        // and the spend it returns is the one this commit made.
        let row = self
            .store
            .client()?
            .query_opt_cached(
                COMMIT.as_str(),
                &[&reservation.id, &reservation.budget, &actual],
            )
            .map_err(|error| self.store.failed(error))?;
        Ok(row.map_or(0, |row| from_sql(row.get(0))))
    }

    /// Gives the held amount back: the call did not happen.
    pub fn release(&self, reservation: FleetReservation) -> Result<(), CostError> {
        self.store
            .client()?
            .execute_cached(RELEASE, &[&reservation.id])
            .map_err(|error| self.store.failed(error))?;
        Ok(())
    }

    /// Records `amount` spent without a reservation (a call made before it could be reserved);
    /// returns what the budget has spent now (0 if it is not defined).
    pub fn record(&self, name: &str, amount: u64) -> Result<u64, CostError> {
        let amount = to_sql(amount)?;
        let row = self
            .store
            .client()?
            .query_opt_cached(RECORD.as_str(), &[&name, &amount])
            .map_err(|error| self.store.failed(error))?;
        Ok(row.map_or(0, |row| from_sql(row.get(0))))
    }

    /// Budget `name`'s limit, spend and live reservations, or `None` if it is not defined.
    pub fn standing(&self, name: &str) -> Result<Option<FleetStanding>, CostError> {
        let row = self
            .store
            .client()?
            .query_opt_cached(STANDING.as_str(), &[&name])
            .map_err(|error| self.store.failed(error))?;
        Ok(row.map(|row| FleetStanding {
            hard: from_sql(row.get(0)),
            spent: from_sql(row.get(1)),
            reserved: from_sql(row.get(2)),
        }))
    }

    /// Releases every reservation whose lease has passed; returns how many.
    pub fn expire(&self) -> Result<u64, CostError> {
        let mut client = self.store.client()?;
        self.sweep(&mut client, None)
    }

    fn sweep(&self, client: &mut Connection, name: Option<&str>) -> Result<u64, CostError> {
        let rows = client
            .query_cached(SWEEP, &[&name])
            .map_err(|error| self.store.failed(error))?;
        Ok(rows.iter().map(|row| from_sql(row.get::<_, i64>(0))).sum())
    }

    fn exceeded(&self, name: &str, amount: u64) -> Result<CostError, CostError> {
        match self.standing(name)? {
            Some(standing) => Ok(CostError::Exceeded(BudgetExceeded::new(
                format!("fleet:{name}"),
                "units".into(),
                u128::from(standing.hard),
                u128::from(standing.spent),
                u128::from(standing.reserved),
                u128::from(amount),
            ))),
            None => Ok(CostError::Store(StoreError::Database(
                crate::DatabaseError::new(
                    self.store.target(),
                    format!("no fleet budget `{name}`; define it first"),
                    false,
                ),
            ))),
        }
    }
}

impl SharedBudgets for FleetBudgets {
    fn define(&self, name: &str, hard: u64, window: Option<Duration>) -> Result<(), CostError> {
        self.define_window(name, hard, window)
    }

    fn hold(&self, name: &str, amount: u64) -> Result<u64, CostError> {
        let reservation = self.reserve(name, amount)?;
        // INVARIANT: ids come from a bigserial, so they are positive.
        Ok(u64::try_from(reservation.id).unwrap_or(0))
    }

    fn settle(&self, name: &str, hold: u64, actual: u64) -> Result<u64, CostError> {
        self.commit(held(name, hold), actual)
    }

    fn release(&self, hold: u64) -> Result<(), CostError> {
        FleetBudgets::release(self, held("", hold))
    }

    fn spend(&self, name: &str, amount: u64) -> Result<u64, CostError> {
        self.record(name, amount)
    }

    fn standing(&self, name: &str) -> Result<Option<FleetStanding>, CostError> {
        FleetBudgets::standing(self, name)
    }
}

/// The reservation a hold id stands for (commit and release need only its id and budget).
fn held(name: &str, hold: u64) -> FleetReservation {
    FleetReservation {
        id: i64::try_from(hold).unwrap_or(i64::MAX),
        budget: name.to_string(),
        amount: 0,
    }
}
