//! The fleet on a real PostgreSQL server: the store's contract, fleet budgets that N processes of M
//! threads never overspend together, a dead process's reservation expiring with its lease,
//! approvals made by one process and used once by another, and a dropped connection.
//!
//! The server comes from `scripts/with-postgres.sh` (which `.ci/test` wraps `cargo test` in) via
//! `FOURFOLD_TEST_POSTGRES`. Without it these tests say why and pass vacuously, except under
//! `CI=true`, where they must run. Each test works in a database of its own.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fourfold::context::{ContextStore, SharedDocuments};
use fourfold::cost::{CostError, FleetBudgets};
use fourfold::store::PostgresStore;
use fourfold::{Request, Store, StoreError, Verdict};

const WORKER_ENV: &str = "FOURFOLD_FLEET_WORKER";

/// The libpq settings of the test server (`host=... user=...`, no database), if there is one.
fn server() -> Option<String> {
    match std::env::var("FOURFOLD_TEST_POSTGRES") {
        Ok(settings) if !settings.trim().is_empty() => Some(settings),
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => panic!(
            "CI must run the PostgreSQL tests: run cargo test under scripts/with-postgres.sh"
        ),
        _ => {
            eprintln!(
                "skipped: no PostgreSQL server for the fleet tests (run `scripts/with-postgres.sh cargo test` to start one)"
            );
            None
        }
    }
}

/// A fresh, empty database on the test server; returns its connection settings.
fn fresh_database(server: &str, name: &str) -> String {
    static N_DATABASES: AtomicU64 = AtomicU64::new(0);
    let database = format!(
        "ff_{name}_{}_{}",
        std::process::id(),
        N_DATABASES.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin =
        postgres::Client::connect(&format!("{server} dbname=postgres"), postgres::NoTls)
            .expect("the test server takes connections");
    admin
        .batch_execute(&format!("CREATE DATABASE {database}"))
        .unwrap();
    format!("{server} dbname={database}")
}

fn connect(settings: &str) -> Arc<PostgresStore> {
    Arc::new(PostgresStore::connect(settings).expect("the test database takes connections"))
}

#[test]
fn the_postgres_store_keeps_the_store_contract() {
    let Some(server) = server() else { return };
    let store = connect(&fresh_database(&server, "contract"));
    crate::store::check_store(&*store);
}

#[test]
fn processes_starting_together_migrate_the_schema_once() {
    let Some(server) = server() else { return };
    let settings = fresh_database(&server, "migrate");
    let stores: Vec<_> = (0..6)
        .map(|_| {
            let settings = settings.clone();
            std::thread::spawn(move || PostgresStore::connect(&settings).map(|_| ()))
        })
        .collect();
    for store in stores {
        store.join().unwrap().unwrap();
    }
    let mut client = postgres::Client::connect(&settings, postgres::NoTls).unwrap();
    let versions: Vec<i32> = client
        .query(
            "SELECT version FROM fourfold_migrations ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6]);
}

#[test]
fn a_bad_url_or_a_missing_server_is_a_typed_error() {
    let bad = PostgresStore::connect("postgresql://user:secret@[bad");
    assert!(matches!(bad, Err(StoreError::Database(_))), "{bad:?}");
    let missing =
        PostgresStore::connect("host=/nonexistent/socket/dir user=nobody connect_timeout=2");
    match missing {
        Err(StoreError::Database(error)) => {
            assert!(error.is_connection(), "{error}");
            assert!(!error.to_string().contains("secret"));
        }
        other => panic!("expected a database error, got {other:?}"),
    }
}

/// What a worker process does, told by `FOURFOLD_FLEET_WORKER`: `reserve <settings> <seed>` makes
/// 8 threads reserve and commit random amounts; `hold <settings>` reserves once and sleeps until
/// killed.
#[test]
#[ignore = "run by the fleet tests in a child process"]
fn fleet_worker_process() {
    let Ok(job) = std::env::var(WORKER_ENV) else {
        return;
    };
    let parts: Vec<&str> = job.splitn(3, '|').collect();
    match parts.as_slice() {
        ["reserve", settings, seed] => {
            let budgets = FleetBudgets::new(connect(settings));
            let seed: u64 = seed.parse().unwrap();
            let threads: Vec<_> = (0..8u64)
                .map(|thread_idx| {
                    let budgets = budgets.clone();
                    std::thread::spawn(move || {
                        let mut state = seed * 1_000 + thread_idx + 1;
                        for _ in 0..40 {
                            state ^= state << 13;
                            state ^= state >> 7;
                            state ^= state << 17;
                            let amount = 1 + state % 50;
                            match budgets.reserve("fleet-tokens", amount) {
                                Ok(reservation) => {
                                    // Actual use is at most what was reserved, as with max_tokens.
                                    let actual = amount - (state >> 8) % (amount + 1);
                                    budgets.commit(reservation, actual).unwrap();
                                }
                                Err(CostError::Exceeded(_)) => {}
                                Err(other) => panic!("{other}"),
                            }
                        }
                    })
                })
                .collect();
            for thread in threads {
                thread.join().unwrap();
            }
        }
        ["hold", settings] => {
            let budgets = FleetBudgets::new(connect(settings)).lease(Duration::from_millis(300));
            let reservation = budgets.reserve("fleet-tokens", 400).unwrap();
            println!("holding {}", reservation.amount());
            std::thread::sleep(Duration::from_secs(600));
        }
        other => panic!("unknown worker job {other:?}"),
    }
}

fn worker(job: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "fleet::fleet_worker_process",
            "--ignored",
            "--nocapture",
        ])
        .env(WORKER_ENV, job)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

#[test]
fn four_processes_of_eight_threads_never_overspend_a_fleet_budget() {
    four_processes_spend(None);
}

#[test]
fn four_processes_of_eight_threads_never_overspend_a_windowed_fleet_budget() {
    // An hour: nothing leaves the window during the test, so its spend is all the spend.
    four_processes_spend(Some(Duration::from_secs(3_600)));
}

fn four_processes_spend(window: Option<Duration>) {
    let Some(server) = server() else { return };
    let settings = fresh_database(&server, "overspend");
    let budgets = FleetBudgets::new(connect(&settings));
    let hard = 5_000;
    budgets.define_window("fleet-tokens", hard, window).unwrap();
    let children: Vec<_> = (0..4)
        .map(|seed| {
            worker(&format!("reserve|{settings}|{}", seed + 1))
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let standing = budgets.standing("fleet-tokens").unwrap().unwrap();
    assert_eq!(standing.reserved, 0, "{standing:?}");
    assert!(standing.spent <= hard, "{standing:?}");
    // 4 x 8 x 40 reservations of ~25 on average ask for about 32,000: the budget ran out, and the
    // refusals kept it from being overspent.
    assert!(standing.spent > hard / 2, "{standing:?}");
}

#[test]
fn a_killed_process_loses_its_reservation_after_the_lease() {
    let Some(server) = server() else { return };
    let settings = fresh_database(&server, "lease");
    let budgets = FleetBudgets::new(connect(&settings));
    budgets.define("fleet-tokens", 1_000).unwrap();
    let mut child = worker(&format!("hold|{settings}")).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while budgets.standing("fleet-tokens").unwrap().unwrap().reserved == 0 {
        assert!(Instant::now() < deadline, "the worker never reserved");
        std::thread::sleep(Duration::from_millis(20));
    }
    // While the dead process's 400 are held, 700 more do not fit.
    assert!(matches!(
        budgets.reserve("fleet-tokens", 700),
        Err(CostError::Exceeded(_))
    ));
    child.kill().unwrap();
    child.wait().unwrap();
    // Once the lease has passed, the hold is swept and the budget has room again.
    let reservation = loop {
        match budgets.reserve("fleet-tokens", 700) {
            Ok(reservation) => break reservation,
            Err(CostError::Exceeded(_)) => {
                assert!(Instant::now() < deadline, "the lease never expired");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(other) => panic!("{other}"),
        }
    };
    budgets.commit(reservation, 650).unwrap();
    let standing = budgets.standing("fleet-tokens").unwrap().unwrap();
    assert_eq!((standing.spent, standing.reserved), (650, 0));
}

#[test]
fn a_commit_after_the_lease_still_records_the_spend() {
    let Some(server) = server() else { return };
    let budgets = FleetBudgets::new(connect(&fresh_database(&server, "late")))
        .lease(Duration::from_millis(1));
    budgets.define("b", 100).unwrap();
    let reservation = budgets.reserve("b", 60).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(budgets.expire().unwrap(), 1);
    budgets.commit(reservation, 55).unwrap();
    let standing = budgets.standing("b").unwrap().unwrap();
    assert_eq!((standing.spent, standing.reserved), (55, 0));
    let released = budgets.reserve("b", 45).unwrap();
    budgets.release(released).unwrap();
    assert_eq!(budgets.standing("b").unwrap().unwrap().reserved, 0);
    assert!(matches!(
        budgets.reserve("nope", 1),
        Err(CostError::Store(_))
    ));
}

const REVIEWED_POLICY: &str = r#"
[[rule]]
id = "push-review"
effect = "gate"
gates = ["human-review"]
run = ["git push*"]
"#;

fn policy_on(store: Arc<PostgresStore>) -> fourfold::Policy {
    fourfold::Policy::builder_from_toml(REVIEWED_POLICY)
        .unwrap()
        .root("/repo")
        .store(store)
        .build()
        .unwrap()
}

#[test]
fn an_approval_made_by_one_process_is_used_once_by_another() {
    let Some(server) = server() else { return };
    let settings = fresh_database(&server, "approval");
    // Three processes' worth of controls: each its own connection pool, sharing only the database.
    let agent = policy_on(connect(&settings));
    let reviewer = policy_on(connect(&settings));
    let other_agent = Arc::new(policy_on(connect(&settings)));
    let push = Request::run("coder", "git push origin main").task("T-1");
    let pending = agent.check(&push).unwrap();
    assert_eq!(pending.verdict, Verdict::Pending);
    let approval_id = pending.approval_id.unwrap();
    let listed: Vec<String> = reviewer
        .pending_approvals()
        .unwrap()
        .into_iter()
        .map(|approval| approval.id)
        .collect();
    assert_eq!(listed, std::slice::from_ref(&approval_id));
    reviewer.approve(&approval_id, "alice", "reviewed").unwrap();
    // Eight threads of another process race to use it: exactly one is allowed.
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let other_agent = Arc::clone(&other_agent);
            let push = push.clone();
            std::thread::spawn(move || other_agent.check(&push).unwrap().verdict)
        })
        .collect();
    let verdicts: Vec<Verdict> = threads
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .collect();
    assert_eq!(
        verdicts
            .iter()
            .filter(|verdict| **verdict == Verdict::Allow)
            .count(),
        1,
        "{verdicts:?}"
    );
    assert_eq!(agent.check(&push).unwrap().verdict, Verdict::Pending);
}

#[test]
fn a_dropped_connection_is_a_typed_error_or_a_reconnect_and_nothing_is_lost() {
    let Some(server) = server() else { return };
    let settings = fresh_database(&server, "dropped");
    let store = connect(&settings);
    store.put("ns", "kept", b"before").unwrap();
    let database = settings.rsplit("dbname=").next().unwrap().to_string();
    let mut admin =
        postgres::Client::connect(&format!("{server} dbname=postgres"), postgres::NoTls).unwrap();
    let n_killed = admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            &[&database],
        )
        .unwrap();
    assert!(n_killed > 0);
    // Each pooled connection the server dropped fails one call with a connection error and is
    // replaced; within a pool's worth of calls the store works again, with what it held.
    let mut n_failed = 0;
    loop {
        match store.get("ns", "kept") {
            Ok(value) => {
                assert_eq!(value.as_deref(), Some(&b"before"[..]));
                break;
            }
            Err(StoreError::Database(error)) => {
                assert!(error.is_connection(), "{error}");
                n_failed += 1;
                assert!(n_failed <= 8, "the pool did not reconnect");
            }
            Err(other) => panic!("{other}"),
        }
    }
    store.put("ns", "after", b"x").unwrap();
    assert_eq!(store.list("ns").unwrap(), ["after", "kept"]);
}

#[test]
fn meters_of_two_processes_spend_one_shared_budget() {
    use fourfold::cost::{Budget, CostMeter, Scope, TokenCounts, Usage};
    let Some(server) = server() else { return };
    let settings = fresh_database(&server, "shared");
    let meter_of_process = || {
        let fleet: Arc<dyn fourfold::cost::SharedBudgets> =
            Arc::new(FleetBudgets::new(connect(&settings)));
        CostMeter::builder()
            .shared_budget(fleet, Budget::tokens(Scope::Fleet).hard(1_000.0))
            .build()
            .unwrap()
    };
    let (first, second) = (meter_of_process(), meter_of_process());
    let call = |agent: &str, input: u64| {
        Usage::new(
            agent,
            "gpt-4o",
            TokenCounts {
                input,
                ..TokenCounts::default()
            },
        )
    };
    let held = first.reserve(&call("coder", 600)).unwrap();
    assert!(matches!(
        second.reserve(&call("reviewer", 500)),
        Err(CostError::Exceeded(_))
    ));
    held.commit(TokenCounts {
        input: 550,
        ..TokenCounts::default()
    })
    .unwrap();
    let second_held = second.reserve(&call("reviewer", 450)).unwrap();
    drop(second_held); // released: the call did not happen
    second.record(call("reviewer", 400)).unwrap();
    // 950 of 1,000 spent fleet-wide: the next call cannot reserve 100, and the gate check says so.
    assert!(matches!(
        first.reserve(&call("coder", 100)),
        Err(CostError::Exceeded(_))
    ));
    assert!(first.check("coder", None, None).is_ok());
    first.record(call("coder", 50)).unwrap();
    assert!(second.check("anyone", None, None).is_err());
    let standing = FleetBudgets::new(connect(&settings))
        .standing("fleet/tokens")
        .unwrap()
        .unwrap();
    assert_eq!((standing.spent, standing.reserved), (1_000, 0));
}

#[test]
fn a_windowed_shared_budget_counts_only_the_spend_of_its_window() {
    use fourfold::cost::{Budget, CostMeter, Scope, TokenCounts, Usage};
    let Some(server) = server() else { return };
    let settings = fresh_database(&server, "window");
    let (first, second) = (
        FleetBudgets::new(connect(&settings)),
        FleetBudgets::new(connect(&settings)),
    );
    first
        .define_window("per-2s", 100, Some(Duration::from_secs(2)))
        .unwrap();
    first.define("lifetime", 100).unwrap();
    let spent_at = Instant::now();
    for budget in ["per-2s", "lifetime"] {
        let held = first.reserve(budget, 60).unwrap();
        assert_eq!(first.commit(held, 60).unwrap(), 60);
        assert_eq!(second.record(budget, 30).unwrap(), 90);
        assert!(matches!(
            second.reserve(budget, 20),
            Err(CostError::Exceeded(_))
        ));
    }
    // Every process defines its budgets as it starts: the same window keeps the spend, and a
    // window of another length still counts it.
    first
        .define_window("per-2s", 100, Some(Duration::from_secs(2)))
        .unwrap();
    assert_eq!(first.standing("per-2s").unwrap().unwrap().spent, 90);
    first
        .define_window("resized", 100, Some(Duration::from_secs(4)))
        .unwrap();
    let held = first.reserve("resized", 90).unwrap();
    assert_eq!(first.commit(held, 90).unwrap(), 90);
    first
        .define_window("resized", 100, Some(Duration::from_secs(1)))
        .unwrap();
    assert_eq!(first.standing("resized").unwrap().unwrap().spent, 90);
    // Once the spend has left the window, the windowed budget takes reservations again, and not
    // before: a bucket counts until all of it is out (the window's first bucket started at most
    // a sixtieth of the window before the spend). 80 fits only once both spends (60, then 30)
    // are out: on a busy machine they can land in buckets that leave the window one after the
    // other, and a reservation of 20 already fits when only the 60 has left.
    let reopened = loop {
        match second.reserve("per-2s", 80) {
            Ok(held) => break held,
            Err(CostError::Exceeded(_)) => {
                assert!(
                    spent_at.elapsed() < Duration::from_secs(20),
                    "it never reopened"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(error) => panic!("{error}"),
        }
    };
    let waited = spent_at.elapsed();
    assert!(
        waited >= Duration::from_millis(1_900),
        "reopened after {waited:?}"
    );
    let standing = first.standing("per-2s").unwrap().unwrap();
    assert_eq!((standing.spent, standing.reserved), (0, 80));
    assert_eq!(second.commit(reopened, 80).unwrap(), 80);
    assert!(matches!(
        second.reserve("lifetime", 20),
        Err(CostError::Exceeded(_))
    ));
    assert!(matches!(
        first.define_window("empty", 1, Some(Duration::ZERO)),
        Err(CostError::Budget(_))
    ));
    // A meter's shared budget with `rolling` (`window_seconds` in a config) is such a budget.
    let fleet: Arc<dyn fourfold::cost::SharedBudgets> =
        Arc::new(FleetBudgets::new(connect(&settings)));
    let meter = CostMeter::builder()
        .shared_budget(fleet, Budget::tokens(Scope::Fleet).hard(50.0).rolling(1))
        .build()
        .unwrap();
    let call = Usage::new(
        "coder",
        "gpt-4o",
        TokenCounts {
            input: 50,
            ..TokenCounts::default()
        },
    );
    meter.record(call.clone()).unwrap();
    assert!(matches!(meter.reserve(&call), Err(CostError::Exceeded(_))));
    std::thread::sleep(Duration::from_millis(1_200));
    drop(meter.reserve(&call).unwrap());
}

#[test]
fn a_shared_soft_limit_is_announced_once_for_the_fleet_and_holds_the_gate() {
    use fourfold::cost::{Budget, BudgetStanding, CostMeter, Scope, TokenCounts, Usage};
    let Some(server) = server() else { return };
    let settings = fresh_database(&server, "shared_soft");
    let budget = || Budget::tokens(Scope::Fleet).soft(500.0).hard(10_000.0);
    let process = || {
        let events = Arc::new(crate::util::Events::default());
        let plugins = Arc::new(fourfold::PluginRegistry::new());
        plugins.install(events.clone()).unwrap();
        let fleet: Arc<dyn fourfold::cost::SharedBudgets> =
            Arc::new(FleetBudgets::new(connect(&settings)));
        let meter = CostMeter::builder()
            .plugins(plugins)
            .shared_budget(fleet, budget())
            .build()
            .unwrap();
        (meter, events)
    };
    let processes = [process(), process()];
    let call = |input: u64| {
        Usage::new(
            "coder",
            "gpt-4o",
            TokenCounts {
                input,
                ..TokenCounts::default()
            },
        )
    };
    assert_eq!(
        processes[0].0.check("coder", None, None).unwrap(),
        BudgetStanding::Within
    );
    // Eight threads in two processes spend 10 tokens 20 times each, half through reservations:
    // 1,600 in all, crossing 500 once.
    std::thread::scope(|scope| {
        for thread in 0..8 {
            let meter = &processes[thread % 2].0;
            scope.spawn(move || {
                for round in 0..20 {
                    if round % 2 == 0 {
                        meter.record(call(10)).unwrap();
                    } else {
                        let held = meter.reserve(&call(10)).unwrap();
                        held.commit(TokenCounts {
                            input: 10,
                            ..TokenCounts::default()
                        })
                        .unwrap();
                    }
                }
            });
        }
    });
    let announced: Vec<String> = processes
        .iter()
        .flat_map(|(_, events)| events.0.lock().clone())
        .filter_map(|event| match event.kind {
            fourfold::EventKind::Gate(gate) => Some(gate.reason),
            _ => None,
        })
        .filter(|reason| reason.contains("passed its soft limit"))
        .collect();
    assert_eq!(announced.len(), 1, "{announced:?}");
    assert!(announced[0].contains("of 500 tokens"), "{announced:?}");
    for (meter, _) in &processes {
        assert_eq!(
            meter.check("coder", None, None).unwrap(),
            BudgetStanding::OverSoft("fleet/tokens".into())
        );
    }
    // A shared budget needs a hard limit: a soft one alone is refused.
    let fleet: Arc<dyn fourfold::cost::SharedBudgets> =
        Arc::new(FleetBudgets::new(connect(&settings)));
    let soft_only = CostMeter::builder()
        .shared_budget(fleet, Budget::tokens(Scope::Fleet).soft(10.0))
        .build();
    assert!(soft_only.is_err());
}

#[test]
fn a_config_with_a_store_shares_approvals_and_budgets() {
    let Some(server) = server() else { return };
    let settings = fresh_database(&server, "config");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), REVIEWED_POLICY).unwrap();
    std::fs::write(
        dir.path().join("fourfold.toml"),
        format!(
            "[policy]\nfile = \"policy.toml\"\n\n[store]\nurl = \"{settings}\"\n\n[[budget]]\nscope = \"fleet\"\nunit = \"tokens\"\nhard = 2000\nshared = true\n"
        ),
    )
    .unwrap();
    let config = dir.path().join("fourfold.toml");
    let agent_process = fourfold::Fourfold::from_config(&config).unwrap();
    let session = agent_process.session("coder", Some("T-1"));
    let push = Request::run("coder", "git push origin main");
    let approval_id = match session.guard(push.clone()) {
        Err(fourfold::SessionError::Pending(decision)) => decision.approval_id.unwrap(),
        other => panic!("expected the push to be held, got {other:?}"),
    };
    // A reviewer's tool on another machine reads the same config (the same store).
    let reviewer = fourfold::session::policy_from_config(&config).unwrap();
    reviewer.approve(&approval_id, "alice", "ok").unwrap();
    assert!(session.guard(push).is_ok());
    // The shared budget is in the store too.
    let counts = fourfold::cost::TokenCounts {
        input: 1_500,
        ..Default::default()
    };
    session.record_usage("gpt-4o", counts).unwrap();
    let other_process = fourfold::Fourfold::from_config(&config).unwrap();
    let other = other_process.session("reviewer", None);
    assert!(matches!(
        other.reserve(
            "gpt-4o",
            fourfold::cost::TokenCounts {
                input: 600,
                ..Default::default()
            }
        ),
        Err(fourfold::SessionError::Cost(CostError::Exceeded(_))
            | fourfold::SessionError::BudgetExceeded(_))
    ));
}

#[test]
fn a_shared_budget_without_a_store_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), REVIEWED_POLICY).unwrap();
    std::fs::write(
        dir.path().join("fourfold.toml"),
        "[policy]\nfile = \"policy.toml\"\n[[budget]]\nscope = \"fleet\"\nunit = \"tokens\"\nhard = 10\nshared = true\n",
    )
    .unwrap();
    let error = fourfold::Fourfold::from_config(dir.path().join("fourfold.toml")).unwrap_err();
    assert!(error.to_string().contains("[store] url"), "{error}");
}

#[test]
fn a_document_put_by_one_process_is_served_current_by_another() {
    let Some(server) = server() else { return };
    let settings = fresh_database(&server, "documents");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policy.toml"),
        "[[rule]]\nid = \"coder\"\neffect = \"allow\"\nagents = [\"coder\"]\nread = [\"docs/**\"]\nwrite = [\"src/**\"]\n\n[[rule]]\nid = \"fresh\"\neffect = \"gate\"\nagents = [\"coder\"]\ngates = [\"context-fresh\"]\nwrite = [\"src/**\"]\n",
    )
    .unwrap();
    let config = dir.path().join("fourfold.toml");
    std::fs::write(
        &config,
        format!("[policy]\nfile = \"policy.toml\"\n[store]\nurl = \"{settings}\"\n[context]\nshared = true\n"),
    )
    .unwrap();
    let docs_process = fourfold::Fourfold::from_config(&config).unwrap();
    let agent_process = fourfold::Fourfold::from_config(&config).unwrap();
    let shared = docs_process.shared_documents().unwrap();
    shared
        .put(
            "docs/auth.md",
            "# Auth\n\n## Login\n\nCall `login(user, password)`; it returns a token.\n",
        )
        .unwrap();
    let session = agent_process.session("coder", Some("T-1"));
    let served_version = |session: &fourfold::AgentSession| {
        session
            .ask("how do I call login", 500)
            .unwrap()
            .hits
            .first()
            .map(|hit| hit.version)
    };
    let deadline = Instant::now() + Duration::from_secs(1);
    while served_version(&session) != Some(1) {
        assert!(
            Instant::now() < deadline,
            "the agent's process was not served the document within a second"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The docs change on the other machine: within a second the agent's write is held as stale,
    // and a re-read serves version 2.
    shared
        .put(
            "docs/auth.md",
            "# Auth\n\n## Login\n\nCall `login(credentials)`; the two-argument form is gone.\n",
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match session.guard(Request::write("coder", "src/auth.rs")) {
            Err(fourfold::SessionError::StaleContext { .. }) => break,
            Ok(_) => assert!(
                Instant::now() < deadline,
                "the change did not reach the agent within a second"
            ),
            Err(other) => panic!("{other}"),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let reread = session.reread().unwrap();
    assert_eq!(reread[0].version, 2);
    assert!(reread[0].text.contains("login(credentials)"));
    assert!(session
        .guard(Request::write("coder", "src/auth.rs"))
        .is_ok());
    // Both processes hold the same history, version for version.
    let history = |fourfold: &fourfold::Fourfold| {
        fourfold
            .context()
            .unwrap()
            .history("docs/auth.md")
            .into_iter()
            .map(|version| (version.version, version.hash))
            .collect::<Vec<_>>()
    };
    assert_eq!(history(&docs_process), history(&agent_process));
    // A process that joins later applies the shared history and compacts its index after.
    let late_process = fourfold::Fourfold::from_config(&config).unwrap();
    assert_eq!(history(&late_process), history(&docs_process));
    assert!(!late_process.context().unwrap().compact());
    assert!(shared.delete("docs/auth.md").unwrap());
    let deadline = Instant::now() + Duration::from_secs(1);
    while agent_process
        .context()
        .unwrap()
        .get("docs/auth.md")
        .is_some()
    {
        assert!(
            Instant::now() < deadline,
            "the delete did not reach the agent within a second"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_finding_recorded_by_one_process_is_served_by_another_and_appended_to() {
    let Some(server) = server() else { return };
    let settings = fresh_database(&server, "records");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), "").unwrap();
    let config = dir.path().join("fourfold.toml");
    std::fs::write(
        &config,
        format!("[policy]\nfile = \"policy.toml\"\n[store]\nurl = \"{settings}\"\n[context]\nshared = true\n"),
    )
    .unwrap();
    let first = fourfold::Fourfold::from_config(&config).unwrap();
    let second = fourfold::Fourfold::from_config(&config).unwrap();
    let recorded = first
        .shared_documents()
        .unwrap()
        .record("deploys", "Deploys run from the release branch only.")
        .unwrap();
    assert_eq!(
        (recorded.key.as_str(), recorded.version),
        ("records/deploys.md", 1)
    );
    // The other process appends to the record as the fleet has it, not to an empty one.
    let appended = second
        .shared_documents()
        .unwrap()
        .record("deploys", "A deploy on Friday needs a second reviewer.")
        .unwrap();
    assert_eq!(appended.version, 2);
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let text = first
            .context()
            .unwrap()
            .get("records/deploys.md")
            .map(|document| document.text)
            .unwrap_or_default();
        if text.contains("release branch") && text.contains("second reviewer") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the appended record did not reach the first process within a second: {text:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_traces_of_every_process_land_in_one_table() {
    let Some(server) = server() else { return };
    let settings = fresh_database(&server, "traces");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), REVIEWED_POLICY).unwrap();
    let config = dir.path().join("fourfold.toml");
    std::fs::write(
        &config,
        format!("[policy]\nfile = \"policy.toml\"\n[store]\nurl = \"{settings}\"\n[trace]\nfile = \"local.trace\"\npostgres = true\n"),
    )
    .unwrap();
    let mut run_ids = Vec::new();
    for agent in ["coder", "reviewer"] {
        let process = fourfold::Fourfold::from_config(&config).unwrap();
        let session = process.session(agent, Some("T-7"));
        run_ids.push(session.run_id().to_string());
        session.decide("push", "tests pass", &[]);
        let _ = session.guard(Request::run(agent, "git push origin main"));
        session.end(None);
        process.tracer().unwrap().flush().unwrap();
    }
    let mut client = postgres::Client::connect(&settings, postgres::NoTls).unwrap();
    let rows = client
        .query(
            "SELECT agent_id, kind, record->'Event'->'kind'->'Gate'->>'outcome'
             FROM fourfold_trace WHERE kind IN ('decision', 'gate') ORDER BY id",
            &[],
        )
        .unwrap();
    let seen: Vec<(String, String, Option<String>)> = rows
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    assert_eq!(
        seen,
        [
            ("coder".into(), "decision".into(), None),
            ("coder".into(), "gate".into(), Some("Pending".into())),
            ("reviewer".into(), "decision".into(), None),
            ("reviewer".into(), "gate".into(), Some("Pending".into())),
        ]
    );
    let n_runs: i64 = client
        .query_one("SELECT count(DISTINCT run_id) FROM fourfold_trace", &[])
        .unwrap()
        .get(0);
    assert_eq!(n_runs, 2);
    // The local trace file has the same events.
    assert!(dir.path().join("local.trace").exists());
}

#[test]
fn an_agent_waiting_on_a_gate_is_woken_by_a_reviewer_elsewhere() {
    let Some(server) = server() else { return };
    let settings = fresh_database(&server, "wait");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), REVIEWED_POLICY).unwrap();
    let config = dir.path().join("fourfold.toml");
    std::fs::write(
        &config,
        format!("[policy]\nfile = \"policy.toml\"\n[store]\nurl = \"{settings}\"\n"),
    )
    .unwrap();
    let agent_process = fourfold::Fourfold::from_config(&config).unwrap();
    let push = Request::run("coder", "git push origin main");
    let waiting = {
        let push = push.clone();
        std::thread::spawn(move || {
            let session = agent_process.session("coder", None);
            session
                .guard_waiting(push, Duration::from_secs(30))
                .map_err(Box::new)
        })
    };
    // The reviewer, in another process, finds the pending approval and approves it.
    let reviewer = fourfold::session::policy_from_config(&config).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let approval_id = loop {
        if let Some(approval) = reviewer.pending_approvals().unwrap().pop() {
            break approval.id;
        }
        assert!(Instant::now() < deadline, "the agent never asked");
        std::thread::sleep(Duration::from_millis(20));
    };
    reviewer.approve(&approval_id, "alice", "ok").unwrap();
    let decision = waiting.join().unwrap().unwrap();
    assert_eq!(decision.verdict, Verdict::Allow);
    assert_eq!(decision.approval_id.as_deref(), Some(approval_id.as_str()));
    // Unanswered, the wait ends with the request still pending.
    let agent_process = fourfold::Fourfold::from_config(&config).unwrap();
    let session = agent_process.session("coder", None);
    assert!(matches!(
        session.guard_waiting(push, Duration::from_millis(200)),
        Err(fourfold::SessionError::Pending(_))
    ));
}

/// A history longer than the pages a process reads the log in (512 entries): a process that
/// joins after it applies all of it, in order, as the process that wrote it did.
#[test]
fn a_log_longer_than_a_page_is_applied_whole_and_in_order() {
    let Some(server) = server() else { return };
    let settings = fresh_database(&server, "pages");
    let join = || SharedDocuments::join(connect(&settings), ContextStore::new()).unwrap();
    let publisher = join();
    // 1,300 puts of 700 keys: the second version of a key comes pages after its first.
    let documents: Vec<(String, String)> = (0..1_300)
        .map(|i| {
            (
                format!("docs/p-{}.md", i % 700),
                format!("# Page {i}\n\nCall `page_{i}()` once.\n"),
            )
        })
        .collect();
    publisher.put_many(&documents).unwrap();
    for i in 0..10 {
        assert!(publisher.delete(&format!("docs/p-{i}.md")).unwrap());
    }
    let expected = ContextStore::new();
    expected.put_many(&documents).unwrap();
    for i in 0..10 {
        expected.delete(&format!("docs/p-{i}.md")).unwrap();
    }
    let history = |store: &ContextStore| {
        (0..700)
            .map(|i| {
                let key = format!("docs/p-{i}.md");
                let versions: Vec<_> = store
                    .history(&key)
                    .into_iter()
                    .map(|version| (version.version, version.hash))
                    .collect();
                (store.get(&key).map(|document| document.text), versions)
            })
            .collect::<Vec<_>>()
    };
    let late = join();
    assert_eq!(late.context().keys().len(), 690);
    assert_eq!(history(late.context()), history(&expected));
    assert_eq!(history(publisher.context()), history(&expected));
}

#[test]
fn a_batch_of_shared_puts_is_applied_everywhere_as_a_loop_of_puts() {
    let Some(server) = server() else { return };
    let settings = fresh_database(&server, "batch");
    let join = || SharedDocuments::join(connect(&settings), ContextStore::new()).unwrap();
    let publisher = join();
    let agents = join();

    // An invalid key anywhere in the batch appends nothing for anybody.
    let error = publisher
        .put_many(&[("docs/a.md", "# A\n\nalpha\n"), ("", "# Empty\n")])
        .unwrap_err();
    assert!(
        matches!(error, fourfold::context::ContextError::InvalidKey { .. }),
        "{error}"
    );
    assert_eq!(agents.refresh().unwrap(), 0);
    assert!(publisher.context().keys().is_empty());

    // Enough documents to be prepared on several threads; the first twenty keys twice, and the
    // last entry the text `docs/page-0.md` has already, which makes no version.
    let mut documents: Vec<(String, String)> = (0..80)
        .map(|i| {
            (
                format!("docs/page-{}.md", i % 60),
                format!("# Page {i}\n\n## Usage\n\nCall `page_{i}()` once per request.\n"),
            )
        })
        .collect();
    documents.push(documents[60].clone());
    let versions = publisher.put_many(&documents).unwrap();
    let expected = ContextStore::new().put_many(&documents).unwrap();
    let numbered = |versions: &[fourfold::context::DocVersion]| {
        versions
            .iter()
            .map(|version| (version.key.clone(), version.version, version.hash.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(numbered(&versions), numbered(&expected));
    assert_eq!(versions[80].version, 2);

    // Another process applies the same history, and so does one that joins later.
    let history = |documents: &SharedDocuments| {
        documents.refresh().unwrap();
        let mut keys = documents.context().keys();
        keys.sort();
        keys.iter()
            .map(|key| numbered(&documents.context().history(key)))
            .collect::<Vec<_>>()
    };
    let published = history(&publisher);
    assert_eq!(published.len(), 60);
    assert_eq!(published.iter().map(Vec::len).sum::<usize>(), 80);
    assert_eq!(history(&agents), published);
    assert_eq!(history(&join()), published);
    let page = agents.context().get("docs/page-0.md").unwrap();
    assert!(page.text.contains("page_60()"), "{}", page.text);
}

#[test]
fn shared_documents_refuse_a_store_kept_in_a_folder() {
    let Some(server) = server() else { return };
    let settings = fresh_database(&server, "backed");
    let backing: Arc<dyn fourfold::Store> = Arc::new(fourfold::MemoryStore::new());
    let backed = ContextStore::open(Arc::clone(&backing)).unwrap();
    assert!(matches!(
        SharedDocuments::join(connect(&settings), backed),
        Err(fourfold::context::ContextError::SharedStoreBacked)
    ));
    SharedDocuments::join(connect(&settings), ContextStore::new()).unwrap();
}

/// An ingest gives the fleet its files in batches (32 at a time): each file counted once, in
/// walk order, with a binary between two batches, and the fleet left as a local ingest of the
/// folder leaves a store of its own.
#[test]
fn an_ingest_of_many_files_is_published_in_batches_and_counted_in_order() {
    let Some(server) = server() else { return };
    let settings = fresh_database(&server, "batches");
    let join = || SharedDocuments::join(connect(&settings), ContextStore::new()).unwrap();
    let publisher = join();
    let agents = join();
    let docs = tempfile::tempdir().unwrap();
    let write = |i: usize, word: &str| {
        std::fs::write(
            docs.path().join(format!("page-{i:03}.md")),
            format!("# Page {i}\n\nThe {word} of page {i}.\n"),
        )
        .unwrap();
    };
    for i in 0..75 {
        write(i, "text");
    }
    std::fs::write(docs.path().join("page-040.png"), [0u8, 159, 146, 150, 0, 1]).unwrap();
    let mut counted = Vec::new();
    let report = publisher
        .ingest_dir(docs.path(), &[], |report| counted.push(report.n_files))
        .unwrap();
    assert_eq!(counted, (1..=76).collect::<Vec<_>>());
    assert_eq!(
        (report.n_changed, report.skipped.len()),
        (75, 1),
        "{report:?}"
    );
    let local = ContextStore::new();
    local.ingest_dir(docs.path(), &[], |_| {}).unwrap();
    let versions = |store: &ContextStore| {
        let mut keys = store.keys();
        keys.sort();
        keys.iter()
            .map(|key| {
                let version = store.get(key).unwrap().version;
                (version.key, version.version, version.hash)
            })
            .collect::<Vec<_>>()
    };
    agents.refresh().unwrap();
    assert_eq!(versions(agents.context()), versions(&local));
    // Ten files change: ten new versions, the others unchanged, for every process.
    for i in (0..75).step_by(8).take(10) {
        write(i, "new text");
    }
    let again = publisher.ingest_dir(docs.path(), &[], |_| {}).unwrap();
    assert_eq!((again.n_changed, again.n_unchanged), (10, 65), "{again:?}");
    local.ingest_dir(docs.path(), &[], |_| {}).unwrap();
    agents.refresh().unwrap();
    assert_eq!(versions(agents.context()), versions(&local));
    assert_eq!(
        agents.context().get("page-072.md").unwrap().version.version,
        2
    );
}

#[test]
fn an_ingest_publishes_a_folder_to_the_fleet_and_retires_only_its_own_documents() {
    let Some(server) = server() else { return };
    let settings = fresh_database(&server, "ingest");
    let join =
        || SharedDocuments::join(connect(&settings), ContextStore::builder().build()).unwrap();
    let publisher = join();
    let agents = join();
    let docs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(docs.path().join("guide")).unwrap();
    std::fs::write(
        docs.path().join("guide/install.md"),
        "# Install\n\nRun `pip install widgets`.\n",
    )
    .unwrap();
    std::fs::write(
        docs.path().join("guide/config.md"),
        "# Config\n\nWidgets read widgets.toml.\n",
    )
    .unwrap();
    std::fs::write(docs.path().join("logo.png"), [0u8, 159, 146, 150, 0, 1]).unwrap();
    // A finding an agent recorded, not from the folder: an ingest must never retire it.
    agents
        .put(
            "findings/flaky-test.md",
            "# Flaky\n\nThe login test is flaky.\n",
        )
        .unwrap();

    let report = publisher.ingest_dir(docs.path(), &[], |_| {}).unwrap();
    assert_eq!(report.n_changed, 2, "{report:?}");
    assert_eq!(report.skipped.len(), 1, "{report:?}");
    agents.refresh().unwrap();
    assert!(agents.context().get("guide/install.md").is_some());
    let log_len = |documents: &SharedDocuments| {
        documents.refresh().unwrap();
        documents
            .context()
            .keys()
            .iter()
            .map(|key| documents.context().history(key).len())
            .sum::<usize>()
    };
    let n_versions = log_len(&agents);

    // Nothing changed: nothing is appended for the fleet.
    let again = publisher.ingest_dir(docs.path(), &[], |_| {}).unwrap();
    assert_eq!((again.n_changed, again.n_unchanged), (0, 2), "{again:?}");
    assert_eq!(log_len(&agents), n_versions);

    // One file changes and one goes: the other process sees version 2 and the retirement, and
    // the recorded finding stays.
    std::fs::write(
        docs.path().join("guide/config.md"),
        "# Config\n\nWidgets read widgets.yaml now.\n",
    )
    .unwrap();
    std::fs::remove_file(docs.path().join("guide/install.md")).unwrap();
    let changed = publisher.ingest_dir(docs.path(), &[], |_| {}).unwrap();
    assert_eq!(changed.n_changed, 1, "{changed:?}");
    assert_eq!(changed.deleted, vec!["guide/install.md".to_string()]);
    agents.refresh().unwrap();
    let config = agents.context().get("guide/config.md").unwrap();
    assert_eq!(config.version.version, 2);
    assert!(config.text.contains("widgets.yaml"));
    assert!(agents.context().get("guide/install.md").is_none());
    assert!(agents.context().get("findings/flaky-test.md").is_some());

    // A process that joins later learns where each document came from, so its ingest of the
    // same folder retires what the first one published.
    let late = join();
    std::fs::remove_file(docs.path().join("guide/config.md")).unwrap();
    let emptied = late.ingest_dir(docs.path(), &[], |_| {}).unwrap();
    assert_eq!(emptied.deleted, vec!["guide/config.md".to_string()]);
    agents.refresh().unwrap();
    assert!(agents.context().get("guide/config.md").is_none());
    assert!(agents.context().get("findings/flaky-test.md").is_some());
}
