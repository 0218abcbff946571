//! The state store: one suite of generic scenarios over [`Store`], run against every
//! implementation — SQLite in a temporary directory, the same through [`AnyStore`] as
//! [`store::open`] makes it, and DynamoDB on moto server (a table of its own per test, with
//! DynamoDB's own paging and with one item per page) — plus what is particular to each: SQLite's
//! schema versions and locks shared by two handles on one file, DynamoDB's split of large plans,
//! and the store locations of [`store::open`].

use crate::common;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::aws::{moto, unique};
use formwork::lease::{self, Subject};
use formwork::plan::model::{EnvironmentPlan, PLAN_JSON_VERSION, Plan, RevisionInfo, UnitPlan};
use formwork::store::dynamo::DynamoStore;
use formwork::store::sqlite::{SCHEMA_VERSION, SqliteStore};
use formwork::store::{
    self, AnyStore, Deployed, Event, Lock, LockError, Millis, Run, RunStatus, StackDeployed, Store,
    StoreError, UnitResult, UnitState,
};

/// 2026-01-01T00:00:00Z.
const T0: Millis = 1_767_225_600_000;
const LEASE: Duration = Duration::from_secs(60);
const REGION: &str = "us-east-1";

// ---------------------------------------------------------------------------------------------
// Fixtures

fn plan(id: &str, created_at: &str, environments: &[&str]) -> Plan {
    Plan {
        version: PLAN_JSON_VERSION,
        id: id.to_string(),
        created_at: created_at.to_string(),
        offline: false,
        base: None,
        head: RevisionInfo {
            rev: "main".to_string(),
            commit: format!("commit-of-{id}"),
        },
        environments: environments
            .iter()
            .map(|name| EnvironmentPlan {
                name: name.to_string(),
                pipeline: "shop".to_string(),
                account: "123456789012".to_string(),
                region: REGION.to_string(),
                units: Vec::new(),
                left_out: Vec::new(),
            })
            .collect(),
        policy: None,
    }
}

/// A plan whose JSON is larger than `bytes`: one stack with a long template diff, of
/// characters of one to four bytes in UTF-8.
fn big_plan(id: &str, created_at: &str, environment: &str, bytes: usize) -> Plan {
    let line = "+  Description: grüße € 😀 \"quoted\" \\ back\n";
    let diff = line.repeat(bytes / line.len() + 1);
    let unit: UnitPlan = serde_json::from_value(serde_json::json!({
        "stack": "app",
        "stack_name": format!("{environment}-app"),
        "action": "update",
        "reasons": [],
        "config_hash": "abc",
        "change_set": null,
        "stack_status": "UPDATE_COMPLETE",
        "last_updated": null,
        "resources": [],
        "parameters": [],
        "security": [],
        "template_diff": diff,
        "inputs": [],
        "message": null,
    }))
    .expect("a unit plan");
    let mut p = plan(id, created_at, &[environment]);
    p.environments[0].units.push(unit);
    assert!(serde_json::to_string(&p).unwrap().len() > bytes);
    p
}

fn run(id: &str, environment: &str, started_at: Millis) -> Run {
    Run {
        id: id.to_string(),
        environment: environment.to_string(),
        plan_id: Some(format!("plan-{id}")),
        commit: format!("commit-{id}"),
        owner: "alice@host (pid 1)".to_string(),
        started_at,
        finished_at: None,
        status: RunStatus::Running,
    }
}

fn unit(run_id: &str, stack: &str, state: UnitState) -> UnitResult {
    UnitResult {
        run_id: run_id.to_string(),
        stack: stack.to_string(),
        stack_name: format!("prod-{stack}"),
        state,
        change_set_id: None,
        client_request_token: None,
        replanned: false,
        message: None,
        started_at: None,
        finished_at: None,
    }
}

fn ids(runs: &[Run]) -> Vec<&str> {
    runs.iter().map(|r| r.id.as_str()).collect()
}

// ---------------------------------------------------------------------------------------------
// The scenarios, for any store

async fn plans_saved_loaded_and_latest<S: Store>(s: Arc<S>) {
    let p1 = plan("p1", "2026-01-01T00:00:00Z", &["prod", "staging"]);
    // Half a second later than p1: ordered by time, not by text.
    let p2 = plan("p2", "2026-01-01T00:00:00.500Z", &["staging"]);
    let p3 = plan("p3", "2026-01-01T00:00:01Z", &["dev"]);
    for p in [&p2, &p3, &p1] {
        s.save_plan(p).await.unwrap();
    }
    assert_eq!(s.plan("p1").await.unwrap().as_ref(), Some(&p1));
    assert_eq!(s.plan("p2").await.unwrap().as_ref(), Some(&p2));
    assert_eq!(s.plan("nope").await.unwrap(), None);
    assert_eq!(s.latest_plan("prod").await.unwrap().as_ref(), Some(&p1));
    assert_eq!(s.latest_plan("staging").await.unwrap().as_ref(), Some(&p2));
    assert_eq!(s.latest_plan("dev").await.unwrap().as_ref(), Some(&p3));
    assert_eq!(s.latest_plan("qa").await.unwrap(), None);

    // Replacing p2 with a version that covers qa instead of staging: staging's newest is p1
    // again.
    let p2b = plan("p2", "2026-01-01T00:00:02Z", &["qa"]);
    s.save_plan(&p2b).await.unwrap();
    assert_eq!(s.plan("p2").await.unwrap().as_ref(), Some(&p2b));
    assert_eq!(s.latest_plan("staging").await.unwrap().as_ref(), Some(&p1));
    assert_eq!(s.latest_plan("qa").await.unwrap().as_ref(), Some(&p2b));

    // Same time: the higher id wins, the same on every store.
    let p4 = plan("p4", "2026-01-01T00:00:00Z", &["prod"]);
    s.save_plan(&p4).await.unwrap();
    assert_eq!(s.latest_plan("prod").await.unwrap().as_ref(), Some(&p4));

    let bad = plan("bad", "yesterday", &["prod"]);
    let err = s.save_plan(&bad).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Data(m) if m.contains("yesterday") && m.contains("RFC 3339")),
        "{err}"
    );
    assert_eq!(s.plan("bad").await.unwrap(), None);

    // By the commit they plan: a pull request's head, planned twice, then another commit.
    let mut h1 = plan("h1", "2026-02-01T00:00:00Z", &["prod", "staging"]);
    h1.head.commit = "feedface".to_string();
    let mut h2 = plan("h2", "2026-02-01T00:00:05Z", &["prod"]);
    h2.head.commit = "feedface".to_string();
    let h3 = plan("h3", "2026-02-01T00:00:09Z", &["prod"]);
    for p in [&h1, &h2, &h3] {
        s.save_plan(p).await.unwrap();
    }
    assert_eq!(s.latest_plan("prod").await.unwrap().as_ref(), Some(&h3));
    let of = |env: &'static str, commit: &'static str| {
        let s = s.clone();
        async move { s.latest_plan_of_commit(env, commit).await.unwrap() }
    };
    assert_eq!(of("prod", "feedface").await.as_ref(), Some(&h2));
    assert_eq!(of("staging", "feedface").await.as_ref(), Some(&h1));
    assert_eq!(of("dev", "feedface").await, None);
    assert_eq!(of("prod", "cafebabe").await, None);
}

async fn large_plans<S: Store>(s: Arc<S>) {
    // Over DynamoDB's 400 KB item limit, and over two chunks.
    let big = big_plan("big", "2026-01-01T00:00:00Z", "prod", 900_000);
    s.save_plan(&big).await.unwrap();
    assert_eq!(s.plan("big").await.unwrap().as_ref(), Some(&big));
    assert_eq!(s.latest_plan("prod").await.unwrap().as_ref(), Some(&big));

    // Replaced by a bigger one, then by a small one.
    let bigger = big_plan("big", "2026-01-01T00:00:01Z", "prod", 1_200_000);
    s.save_plan(&bigger).await.unwrap();
    assert_eq!(s.plan("big").await.unwrap().as_ref(), Some(&bigger));
    let small = plan("big", "2026-01-01T00:00:02Z", &["prod"]);
    s.save_plan(&small).await.unwrap();
    assert_eq!(s.plan("big").await.unwrap().as_ref(), Some(&small));
    assert_eq!(s.latest_plan("prod").await.unwrap().as_ref(), Some(&small));
}

async fn old_locks_are_pruned_and_events_recorded<S: Store>(s: Arc<S>) {
    // Delivery ids remembered as locks: the expired ones under the prefix go, the rest stay.
    s.try_lock("delivery/a", "agent", "webhook delivery", LEASE, T0)
        .await
        .unwrap();
    s.try_lock("delivery/b", "agent", "webhook delivery", LEASE * 10, T0)
        .await
        .unwrap();
    s.try_lock("prod", "alice", "apply", LEASE, T0)
        .await
        .unwrap();
    let after_first = T0 + LEASE.as_millis() as i64 + 1;
    s.prune_locks("delivery/", after_first).await.unwrap();
    assert!(s.lock("delivery/b").await.unwrap().is_some());
    assert!(
        s.lock("prod").await.unwrap().is_some(),
        "other locks are left alone"
    );
    // Events: a gate passed.
    let e = formwork::store::Event {
        environment: "prod".into(),
        at: T0 + 5,
        kind: "gate".into(),
        actor: "alice".into(),
        detail: "upload-config".into(),
    };
    s.record_event(&e).await.unwrap();
    let events = s.events(Some("prod"), 10).await.unwrap();
    assert!(events.iter().any(|x| x == &e), "{events:?}");
}

async fn locks_taken_refused_renewed_and_released<S: Store>(s: Arc<S>) {
    let a = s
        .try_lock("prod", "alice@host (pid 1)", "apply of plan P1", LEASE, T0)
        .await
        .unwrap();
    assert_eq!(
        (a.environment.as_str(), a.owner.as_str(), a.reason.as_str()),
        ("prod", "alice@host (pid 1)", "apply of plan P1")
    );
    assert_eq!((a.acquired_at, a.lease_expires_at), (T0, T0 + 60_000));
    assert!(a.token.len() >= 16, "token {:?}", a.token);
    assert_eq!(s.lock("prod").await.unwrap().as_ref(), Some(&a));
    assert_eq!(s.lock("staging").await.unwrap(), None);

    // Refused while the lease runs, up to its last millisecond; the error says who holds it.
    for now in [T0, T0 + 1, T0 + 60_000] {
        let err = s
            .try_lock(
                "prod",
                "bob@ci (pid 2)",
                "plan of pull request 7",
                LEASE,
                now,
            )
            .await
            .unwrap_err();
        let LockError::Held(held) = &err else {
            panic!("expected Held, got {err}");
        };
        assert_eq!(held, &a);
        let message = err.to_string();
        for part in [
            "`prod`",
            "alice@host (pid 1)",
            "apply of plan P1",
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:01:00Z",
        ] {
            assert!(message.contains(part), "{part:?} not in {message:?}");
        }
    }
    // Locks are per environment.
    let other = s
        .try_lock("staging", "bob@ci (pid 2)", "plan", LEASE, T0)
        .await
        .unwrap();
    assert_ne!(other.token, a.token);

    // Renewed with its token: a new lease from `now`, the same lock otherwise.
    let a2 = s.renew_lock(&a, LEASE, T0 + 30_000).await.unwrap();
    assert_eq!(
        a2,
        Lock {
            lease_expires_at: T0 + 90_000,
            ..a.clone()
        }
    );
    assert_eq!(s.lock("prod").await.unwrap().as_ref(), Some(&a2));
    assert!(matches!(
        s.try_lock("prod", "bob@ci (pid 2)", "plan", LEASE, T0 + 61_000)
            .await,
        Err(LockError::Held(_))
    ));

    // The lease ran out: taken over.
    let b = s
        .try_lock("prod", "bob@ci (pid 2)", "plan", LEASE, T0 + 90_001)
        .await
        .unwrap();
    assert_eq!(
        (b.owner.as_str(), b.acquired_at),
        ("bob@ci (pid 2)", T0 + 90_001)
    );
    assert_ne!(b.token, a.token);

    // The old holder finds out when renewing, and cannot release the new holder's lock.
    let err = s.renew_lock(&a2, LEASE, T0 + 90_002).await.unwrap_err();
    assert!(
        matches!(&err, LockError::Lost(env) if env == "prod"),
        "{err}"
    );
    assert!(err.to_string().contains("lost"), "{err}");
    s.release_lock(&a2).await.unwrap();
    assert_eq!(s.lock("prod").await.unwrap().as_ref(), Some(&b));

    // Released by its holder: free at once, and releasing again does nothing.
    s.release_lock(&b).await.unwrap();
    assert_eq!(s.lock("prod").await.unwrap(), None);
    s.release_lock(&b).await.unwrap();
    let c = s
        .try_lock("prod", "carol", "apply", LEASE, T0 + 90_003)
        .await
        .unwrap();
    assert!(matches!(
        s.renew_lock(&b, LEASE, T0 + 90_004).await,
        Err(LockError::Lost(_))
    ));
    s.release_lock(&c).await.unwrap();
    s.release_lock(&other).await.unwrap();
    assert_eq!(s.lock("staging").await.unwrap(), None);
}

async fn force_unlock_frees_and_records<S: Store>(s: Arc<S>) {
    let a = s
        .try_lock("prod", "alice@host (pid 1)", "apply of plan P1", LEASE, T0)
        .await
        .unwrap();
    let removed = s
        .force_unlock("prod", "carol", "the runner died", T0 + 1_000)
        .await
        .unwrap();
    assert_eq!(removed.as_ref(), Some(&a));
    assert_eq!(s.lock("prod").await.unwrap(), None);

    let events = s.events(Some("prod"), 10).await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(
        (
            e.environment.as_str(),
            e.at,
            e.kind.as_str(),
            e.actor.as_str()
        ),
        ("prod", T0 + 1_000, "unlock", "carol")
    );
    for part in ["the runner died", "alice@host (pid 1)", "apply of plan P1"] {
        assert!(e.detail.contains(part), "{part:?} not in {:?}", e.detail);
    }
    assert_eq!(s.events(None, 10).await.unwrap(), events);

    // Free for others at once, though the old lease would still run; the old holder lost it.
    let b = s
        .try_lock("prod", "bob", "apply", LEASE, T0 + 1_001)
        .await
        .unwrap();
    assert!(matches!(
        s.renew_lock(&a, LEASE, T0 + 1_002).await,
        Err(LockError::Lost(_))
    ));
    assert_eq!(s.lock("prod").await.unwrap().as_ref(), Some(&b));

    // Nothing to force open: nothing happens, nothing is recorded.
    assert_eq!(
        s.force_unlock("staging", "carol", "why not", T0 + 2_000)
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.events(None, 10).await.unwrap().len(), 1);
}

async fn events_newest_first<S: Store>(s: Arc<S>) {
    // Recorded out of time order, in two environments.
    let times = [(30, "a"), (10, "b"), (50, "a"), (20, "a"), (40, "b")];
    for (t, env) in times {
        s.try_lock(env, &format!("owner-{t}"), "apply", LEASE, T0 + t)
            .await
            .unwrap();
        s.force_unlock(
            env,
            &format!("actor-{t}"),
            &format!("reason {t}"),
            T0 + t + 1,
        )
        .await
        .unwrap()
        .expect("a lock to remove");
    }
    let at = |events: Vec<Event>| events.iter().map(|e| e.at - T0).collect::<Vec<_>>();
    assert_eq!(at(s.events(None, 10).await.unwrap()), [51, 41, 31, 21, 11]);
    assert_eq!(at(s.events(None, 2).await.unwrap()), [51, 41]);
    assert_eq!(at(s.events(Some("a"), 10).await.unwrap()), [51, 31, 21]);
    assert_eq!(at(s.events(Some("b"), 1).await.unwrap()), [41]);
    assert_eq!(at(s.events(Some("a"), 0).await.unwrap()), Vec::<i64>::new());
    assert!(s.events(Some("c"), 10).await.unwrap().is_empty());
    let newest = &s.events(None, 1).await.unwrap()[0];
    assert_eq!(
        (newest.environment.as_str(), newest.actor.as_str()),
        ("a", "actor-50")
    );
    assert!(newest.detail.contains("reason 50") && newest.detail.contains("owner-50"));
}

async fn runs_units_and_listings<S: Store>(s: Arc<S>) {
    let mut r1 = run("r1", "prod", T0);
    let r2 = run("r2", "staging", T0 + 10);
    let mut r3 = run("r3", "prod", T0 + 20);
    let mut r4 = run("r4", "prod", T0 + 30);
    r4.plan_id = None;
    for r in [&r3, &r1, &r4, &r2] {
        s.start_run(r).await.unwrap();
    }
    assert!(s.start_run(&r1).await.is_err(), "a run id is recorded once");

    // Stacks come back in the order they were first recorded; a later write replaces the
    // earlier one in place.
    for stack in ["network", "app", "database"] {
        s.put_unit(&unit("r3", stack, UnitState::Waiting))
            .await
            .unwrap();
    }
    let network = UnitResult {
        state: UnitState::Applied,
        change_set_id: Some("arn:aws:cloudformation:us-east-1:123456789012:changeSet/x/1".into()),
        client_request_token: Some("formwork-r3-network".into()),
        replanned: true,
        message: Some("3 resources changed".into()),
        started_at: Some(T0 + 21),
        finished_at: Some(T0 + 25),
        ..unit("r3", "network", UnitState::Waiting)
    };
    s.put_unit(&UnitResult {
        state: UnitState::Executing,
        ..network.clone()
    })
    .await
    .unwrap();
    s.put_unit(&network).await.unwrap();
    let app = UnitResult {
        message: Some("ROLLBACK_COMPLETE".into()),
        ..unit("r3", "app", UnitState::Failed)
    };
    s.put_unit(&app).await.unwrap();
    // Back to no message.
    let app = UnitResult {
        message: None,
        ..app
    };
    s.put_unit(&app).await.unwrap();

    let (got, units) = s.run("r3").await.unwrap().expect("run r3");
    assert_eq!(got, r3);
    assert_eq!(
        units,
        [
            network.clone(),
            app.clone(),
            unit("r3", "database", UnitState::Waiting)
        ]
    );
    assert_eq!(s.run("r1").await.unwrap(), Some((r1.clone(), Vec::new())));
    assert_eq!(s.run("nope").await.unwrap(), None);

    let err = s
        .put_unit(&unit("nope", "app", UnitState::Waiting))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    let err = s
        .finish_run("nope", RunStatus::Succeeded, T0)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");

    s.finish_run("r1", RunStatus::Succeeded, T0 + 5)
        .await
        .unwrap();
    s.finish_run("r3", RunStatus::Failed, T0 + 40)
        .await
        .unwrap();
    r1.status = RunStatus::Succeeded;
    r1.finished_at = Some(T0 + 5);
    r3.status = RunStatus::Failed;
    r3.finished_at = Some(T0 + 40);
    assert_eq!(s.run("r3").await.unwrap().unwrap().0, r3);

    let prod = s.runs(Some("prod"), 10).await.unwrap();
    assert_eq!(prod, [r4.clone(), r3.clone(), r1.clone()]);
    assert_eq!(ids(&s.runs(Some("prod"), 2).await.unwrap()), ["r4", "r3"]);
    assert_eq!(ids(&s.runs(Some("staging"), 10).await.unwrap()), ["r2"]);
    assert!(s.runs(Some("prod"), 0).await.unwrap().is_empty());
    assert!(s.runs(Some("qa"), 10).await.unwrap().is_empty());
    let all = s.runs(None, 10).await.unwrap();
    assert_eq!(all, [r4.clone(), r3, r2.clone(), r1]);
    assert_eq!(ids(&s.runs(None, 3).await.unwrap()), ["r4", "r3", "r2"]);

    assert_eq!(s.unfinished_runs("prod").await.unwrap(), [r4]);
    assert_eq!(s.unfinished_runs("staging").await.unwrap(), [r2]);
    assert!(s.unfinished_runs("qa").await.unwrap().is_empty());

    // Many stacks keep their order.
    s.start_run(&run("r5", "prod", T0 + 50)).await.unwrap();
    let stacks: Vec<String> = (0..12).rev().map(|i| format!("s{i:02}")).collect();
    for stack in &stacks {
        s.put_unit(&unit("r5", stack, UnitState::Waiting))
            .await
            .unwrap();
    }
    let (_, units) = s.run("r5").await.unwrap().unwrap();
    assert_eq!(
        units.iter().map(|u| &u.stack).collect::<Vec<_>>(),
        stacks.iter().collect::<Vec<_>>()
    );
}

async fn deployed_set_and_get<S: Store>(s: Arc<S>) {
    assert_eq!(s.deployed("prod").await.unwrap(), None);
    let d1 = Deployed {
        environment: "prod".into(),
        commit: "c1".into(),
        plan_id: Some("p1".into()),
        run_id: "r1".into(),
        at: T0,
    };
    s.set_deployed(&d1).await.unwrap();
    assert_eq!(s.deployed("prod").await.unwrap().as_ref(), Some(&d1));
    let d2 = Deployed {
        commit: "c2".into(),
        plan_id: None,
        run_id: "r2".into(),
        at: T0 + 1,
        ..d1.clone()
    };
    s.set_deployed(&d2).await.unwrap();
    assert_eq!(s.deployed("prod").await.unwrap().as_ref(), Some(&d2));
    assert_eq!(s.deployed("staging").await.unwrap(), None);
}

/// Tasks race for one lock at the same instant: exactly one gets it, and every other is told
/// who did. Then the same over a lease that has run out.
async fn lock_races_have_one_winner<S: Store + 'static>(s: Arc<S>) {
    const TASKS: usize = 8;
    for round in 0..4 {
        let env = format!("race-{round}");
        let expired = round % 2 == 1;
        let now = if expired {
            s.try_lock(&env, "old", "apply", Duration::from_secs(1), T0)
                .await
                .unwrap();
            T0 + 5_000
        } else {
            T0
        };
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                let s = Arc::clone(&s);
                let env = env.clone();
                tokio::spawn(async move {
                    s.try_lock(&env, &format!("task-{i}"), "apply", LEASE, now)
                        .await
                })
            })
            .collect();
        let mut won = Vec::new();
        let mut refused = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(lock) => won.push(lock),
                Err(LockError::Held(holder)) => refused.push(holder),
                Err(e) => panic!("round {round}: {e}"),
            }
        }
        assert_eq!(won.len(), 1, "round {round}: {won:?}");
        assert_eq!(refused.len(), TASKS - 1);
        assert!(refused.iter().all(|h| h == &won[0]), "round {round}");
        assert_eq!(s.lock(&env).await.unwrap().as_ref(), Some(&won[0]));
    }
}

// ---------------------------------------------------------------------------------------------
// Leases (formwork::lease) over each store

/// A held lease is renewed while its work runs, so others are refused past its first term; when
/// it is forced open the work is told, and releasing it then leaves the new holder alone.
async fn leases_are_renewed_and_their_loss_is_signalled<S: Store + 'static>(s: Arc<S>) {
    let subject = Subject::Work("prod".into());
    let term = Duration::from_secs(1);
    let held = lease::hold(s.clone(), subject.clone(), "replica-a", "reconciling", term)
        .await
        .unwrap();
    let first = s.lock(&subject.key()).await.unwrap().unwrap();
    assert_eq!(first.owner, "replica-a");
    tokio::time::sleep(3 * term).await;
    let later = s.lock(&subject.key()).await.unwrap().unwrap();
    assert!(
        later.lease_expires_at > first.lease_expires_at,
        "renewed: {first:?} then {later:?}"
    );
    assert!(!held.is_lost());
    let refused = lease::take(s.as_ref(), &subject, "replica-b", "reconciling", term).await;
    assert!(
        matches!(&refused, Err(LockError::Held(l)) if l.owner == "replica-a"),
        "{refused:?}"
    );

    // Forced open: the next renewal finds it gone, and the work's signal fires.
    let mut signal = held.signal();
    lease::force_release(s.as_ref(), &subject, "carol", "stuck")
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), signal.lost())
        .await
        .expect("the loss is signalled");
    assert!(held.is_lost());
    let b = lease::take(s.as_ref(), &subject, "replica-b", "reconciling", LEASE)
        .await
        .unwrap();
    held.release(s.as_ref()).await.unwrap();
    assert_eq!(s.lock(&subject.key()).await.unwrap(), Some(b));

    // Released in good order, a lease is free at once.
    let other = Subject::Apply("staging".into());
    let held = lease::hold(s.clone(), other.clone(), "alice", "apply", LEASE)
        .await
        .unwrap();
    held.release(s.as_ref()).await.unwrap();
    assert_eq!(lease::holder(s.as_ref(), &other).await.unwrap(), None);
}

/// A pull request's claim is renewed by that pull request and refused to others, released only
/// by its owner (or forced, recorded), and a hold of a process of this machine that is gone is
/// taken over at once, recorded too.
async fn claims_and_takeovers<S: Store + 'static>(s: Arc<S>) {
    let claim = Subject::Claim("prod".into());
    let (one, two) = (lease::pull_request_owner(1), lease::pull_request_owner(2));
    let a = lease::take_or_renew(s.as_ref(), &claim, &one, "planned", LEASE)
        .await
        .unwrap();
    let again = lease::take_or_renew(s.as_ref(), &claim, &one, "planned", LEASE * 2)
        .await
        .unwrap();
    assert_eq!(again.token, a.token, "renewed, not taken anew");
    assert!(again.lease_expires_at > a.lease_expires_at);
    let refused = lease::take_or_renew(s.as_ref(), &claim, &two, "planned", LEASE).await;
    assert!(
        matches!(&refused, Err(LockError::Held(l)) if l.owner == "pull request #1"),
        "{refused:?}"
    );
    assert!(
        !lease::release_if_owner(s.as_ref(), &claim, &two)
            .await
            .unwrap()
    );
    assert!(
        lease::release_if_owner(s.as_ref(), &claim, &one)
            .await
            .unwrap()
    );
    lease::take(s.as_ref(), &claim, &two, "planned", LEASE)
        .await
        .unwrap();
    let forced = lease::force_release(s.as_ref(), &claim, "@octocat (GitHub)", "unlock")
        .await
        .unwrap();
    assert_eq!(forced.map(|l| l.owner), Some(two));

    let me = lease::process_owner();
    let gone = me.replace(&format!("(pid {})", std::process::id()), "(pid 4294967295)");
    let apply = Subject::Apply("qa".into());
    lease::take(s.as_ref(), &apply, &gone, "apply of plan P", LEASE)
        .await
        .unwrap();
    let taken = lease::take(s.as_ref(), &apply, &me, "apply of plan Q", LEASE)
        .await
        .unwrap();
    assert_eq!(taken.owner, me);
    // A delivery handled by a process that is gone stays handled.
    let delivery = Subject::Delivery("d-1".into());
    lease::take(s.as_ref(), &delivery, &gone, "webhook delivery", LEASE)
        .await
        .unwrap();
    let again = lease::take(s.as_ref(), &delivery, &me, "webhook delivery", LEASE).await;
    assert!(
        matches!(&again, Err(LockError::Held(l)) if l.owner == gone),
        "{again:?}"
    );
    let events = s.events(Some("qa"), 10).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == "unlock" && e.detail.contains("is no longer running")),
        "{events:?}"
    );
}

/// Where each stack stands: set, replaced one by one, listed by stack key, per environment.
async fn stack_records_set_replaced_and_listed<S: Store>(s: Arc<S>) {
    let rec = |stack: &str, commit: &str, at: Millis| StackDeployed {
        environment: "prod".into(),
        stack: stack.into(),
        commit: commit.into(),
        config_hash: format!("h-{stack}-{commit}"),
        run_id: format!("r-{commit}"),
        at,
    };
    assert!(s.stacks_deployed("prod").await.unwrap().is_empty());
    s.set_stacks_deployed(&[rec("vpc", "c1", T0), rec("app", "c1", T0)])
        .await
        .unwrap();
    s.set_stacks_deployed(&[rec("app", "c2", T0 + 1)])
        .await
        .unwrap();
    let mut other = rec("vpc", "c9", T0);
    other.environment = "staging".into();
    s.set_stacks_deployed(&[other]).await.unwrap();
    assert_eq!(
        s.stacks_deployed("prod").await.unwrap(),
        vec![rec("app", "c2", T0 + 1), rec("vpc", "c1", T0)]
    );
    assert_eq!(s.stacks_deployed("staging").await.unwrap().len(), 1);
}

/// Policy results: kept, found by key among others, kept again unchanged.
async fn policy_results_kept_and_found<S: Store>(s: Arc<S>) {
    let keys = |ks: &[&str]| ks.iter().map(|k| k.to_string()).collect::<Vec<_>>();
    assert!(
        s.policy_results(&keys(&["a", "b"]))
            .await
            .unwrap()
            .is_empty()
    );
    s.put_policy_results(&[]).await.unwrap();
    s.put_policy_results(&[
        ("a".into(), "{\"name\":\"a\"}".into()),
        ("c".into(), "{\"name\":\"c\"}".into()),
    ])
    .await
    .unwrap();
    s.put_policy_results(&[("a".into(), "{\"name\":\"a\"}".into())])
        .await
        .unwrap();
    let mut found = s.policy_results(&keys(&["a", "b", "c"])).await.unwrap();
    found.sort();
    assert_eq!(
        found,
        vec![
            ("a".to_string(), "{\"name\":\"a\"}".to_string()),
            ("c".to_string(), "{\"name\":\"c\"}".to_string()),
        ]
    );
    assert!(s.policy_results(&[]).await.unwrap().is_empty());
}

/// One test per scenario and store.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let s = super::SqliteStore::open(&dir.path().join("state.db")).unwrap();
                    super::$name(std::sync::Arc::new(s)).await;
                }
            )*
        }
        mod any_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let s = super::store::open("sqlite", dir.path()).await.unwrap();
                    assert!(matches!(s, super::AnyStore::Sqlite(_)));
                    super::$name(std::sync::Arc::new(s)).await;
                }
            )*
        }
        mod dynamo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let t = super::DynamoTable::new().await;
                    super::$name(std::sync::Arc::new(t.store())).await;
                    t.drop_table().await;
                }
            )*
        }
        mod dynamo_paged {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let t = super::DynamoTable::new().await;
                    super::$name(std::sync::Arc::new(t.store().with_page_size(1))).await;
                    t.drop_table().await;
                }
            )*
        }
    };
}

suite!(
    plans_saved_loaded_and_latest,
    old_locks_are_pruned_and_events_recorded,
    large_plans,
    locks_taken_refused_renewed_and_released,
    force_unlock_frees_and_records,
    events_newest_first,
    runs_units_and_listings,
    deployed_set_and_get,
    lock_races_have_one_winner,
    leases_are_renewed_and_their_loss_is_signalled,
    claims_and_takeovers,
    stack_records_set_replaced_and_listed,
    policy_results_kept_and_found,
);

// ---------------------------------------------------------------------------------------------
// DynamoDB

/// A table of its own on moto server.
struct DynamoTable {
    client: aws_sdk_dynamodb::Client,
    name: String,
}

impl DynamoTable {
    async fn new() -> DynamoTable {
        let client = aws_sdk_dynamodb::Client::new(&common::sdk::config(moto(), REGION));
        let t = DynamoTable {
            client,
            name: unique("fw-store"),
        };
        t.store().ensure_table().await.unwrap();
        t
    }

    fn store(&self) -> DynamoStore {
        DynamoStore::new(self.client.clone(), self.name.clone())
    }

    /// Sort keys of the items of one partition, page by page.
    async fn sort_keys(&self, pk: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.name)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(
                    ":pk",
                    aws_sdk_dynamodb::types::AttributeValue::S(pk.to_string()),
                )
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            keys.extend(out.items().iter().map(|i| i["sk"].as_s().unwrap().clone()));
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return keys,
            }
        }
    }

    async fn drop_table(self) {
        self.client
            .delete_table()
            .table_name(&self.name)
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_locks_carry_a_time_to_live() {
    let t = DynamoTable::new().await;
    let ttl = t
        .client
        .describe_time_to_live()
        .table_name(&t.name)
        .send()
        .await
        .unwrap();
    let d = ttl.time_to_live_description().unwrap();
    assert_eq!(d.attribute_name(), Some("expires"));
    let s = t.store();
    s.try_lock("delivery/x", "agent", "webhook delivery", LEASE, T0)
        .await
        .unwrap();
    let item = t
        .client
        .get_item()
        .table_name(&t.name)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("LOCK#delivery/x".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("LOCK".into()),
        )
        .send()
        .await
        .unwrap();
    let expires: i64 = item.item().unwrap()["expires"]
        .as_n()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(expires, (T0 + LEASE.as_millis() as i64) / 1000 + 24 * 3600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_splits_large_plans_into_chunks_and_cleans_up() {
    let t = DynamoTable::new().await;
    let s = t.store();
    let small = plan("p", "2026-01-01T00:00:00Z", &["prod"]);
    s.save_plan(&small).await.unwrap();
    assert_eq!(t.sort_keys("PLAN#p").await, ["PLAN"]);

    // ~900 KB: three chunks of at most 350 KB.
    let big = big_plan("p", "2026-01-01T00:00:01Z", "prod", 900_000);
    s.save_plan(&big).await.unwrap();
    let keys = t.sort_keys("PLAN#p").await;
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert!(
        keys[..3].iter().all(|k| k.starts_with("CHUNK#")),
        "{keys:?}"
    );
    assert_eq!(s.plan("p").await.unwrap().as_ref(), Some(&big));

    // A new version replaces the chunks; the index entry of the old time goes.
    let bigger = big_plan("p", "2026-01-01T00:00:02Z", "prod", 1_100_000);
    s.save_plan(&bigger).await.unwrap();
    let keys2 = t.sort_keys("PLAN#p").await;
    assert_eq!(keys2.len(), 5, "{keys2:?}");
    assert!(keys2.iter().all(|k| !keys[..3].contains(k)), "{keys2:?}");
    assert_eq!(s.plan("p").await.unwrap().as_ref(), Some(&bigger));
    let index = t.sort_keys("ENV#prod").await;
    assert_eq!(index.len(), 1, "{index:?}");

    s.save_plan(&small).await.unwrap();
    assert_eq!(t.sort_keys("PLAN#p").await, ["PLAN"]);
    assert_eq!(s.latest_plan("prod").await.unwrap().as_ref(), Some(&small));
    t.drop_table().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_ensure_table_is_idempotent_and_checks_keys() {
    let t = DynamoTable::new().await;
    t.store().ensure_table().await.unwrap();
    t.store().ensure_table().await.unwrap();

    // A table of that name with other keys is not taken for a state table.
    let other = unique("fw-other");
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    t.client
        .create_table()
        .table_name(&other)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let err = DynamoStore::new(t.client.clone(), other.clone())
        .ensure_table()
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&other) && message.contains("not a formwork state table"),
        "{message}"
    );
    t.client
        .delete_table()
        .table_name(&other)
        .send()
        .await
        .unwrap();
    t.drop_table().await;
}

// ---------------------------------------------------------------------------------------------
// SQLite

fn user_version(path: &std::path::Path) -> u32 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn sqlite_creates_the_file_and_its_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/state.db");
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.path(), path);
    assert!(path.is_file());
    assert_eq!(user_version(&path), SCHEMA_VERSION);
    let mode: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode.to_ascii_lowercase(), "wal");
}

#[test]
fn sqlite_reopens_a_database_of_its_version_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let p = plan("p1", "2026-01-01T00:00:00Z", &["prod"]);
    {
        let s = SqliteStore::open(&path).unwrap();
        common::sdk::block(async {
            s.save_plan(&p).await.unwrap();
            s.start_run(&run("r1", "prod", T0)).await.unwrap();
        });
    }
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(user_version(&path), SCHEMA_VERSION);
    common::sdk::block(async {
        assert_eq!(s.plan("p1").await.unwrap(), Some(p));
        assert_eq!(ids(&s.runs(None, 10).await.unwrap()), ["r1"]);
    });
}

#[test]
fn sqlite_refuses_a_database_of_a_newer_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    drop(SqliteStore::open(&path).unwrap());
    let newer = SCHEMA_VERSION + 1;
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", newer)
        .unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    let message = err.to_string();
    for part in [
        path.display().to_string(),
        format!("schema version {newer}"),
        format!("up to {SCHEMA_VERSION}"),
        "newer formwork".to_string(),
    ] {
        assert!(message.contains(&part), "{part:?} not in {message:?}");
    }
    // Left as it was.
    assert_eq!(user_version(&path), newer);
}

#[test]
fn sqlite_refuses_a_file_that_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    std::fs::write(
        &path,
        "these are not the droids you are looking for\n".repeat(100),
    )
    .unwrap();
    let message = SqliteStore::open(&path).unwrap_err().to_string();
    assert!(
        message.contains(&path.display().to_string()) && message.contains("not a database"),
        "{message}"
    );
}

/// Several processes opening a new database at once: one creates the schema, none fails.
#[test]
fn sqlite_concurrent_opens_migrate_once() {
    // Opening races with other opens, with migrations and with the last connection of another
    // handle closing (SQLite then answers "database is locked" without waiting): many rounds,
    // with two threads spinning to keep the cores busy, as on a loaded CI machine.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..2)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    std::hint::black_box(x);
                }
            })
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    for round in 0..60 {
        // A new file every third round; the others reopen one that exists.
        let path = dir.path().join(format!("state-{}.db", round / 3));
        let barrier = Arc::new(Barrier::new(6));
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let (path, barrier) = (path.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    SqliteStore::open(&path).map(drop)
                })
            })
            .collect();
        for t in threads {
            if let Err(e) = t.join().unwrap() {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                panic!("round {round}: {e}");
            }
        }
        assert_eq!(user_version(&path), SCHEMA_VERSION);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
}

/// formwork processes started together on one new state file (a daemon and a `status`, two
/// command-line runs): every one of them opens it.
#[test]
fn sqlite_processes_started_together_all_open_the_store() {
    for round in 0..8 {
        let dir = tempfile::tempdir().unwrap();
        let children: Vec<_> = (0..6)
            .map(|_| {
                std::process::Command::new(env!("CARGO_BIN_EXE_formwork"))
                    .arg("--data-dir")
                    .arg(dir.path())
                    .args(["status"])
                    .current_dir(dir.path())
                    .env("NO_COLOR", "1")
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && !err.contains("locked"),
                "round {round}: {err}"
            );
        }
    }
}

#[test]
fn sqlite_forgets_expired_delivery_ids() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("state.db")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        s.try_lock("delivery/a", "agent", "webhook delivery", LEASE, T0)
            .await
            .unwrap();
        s.try_lock("delivery/b", "agent", "webhook delivery", LEASE * 10, T0)
            .await
            .unwrap();
        s.try_lock("prod", "alice", "apply", LEASE, T0)
            .await
            .unwrap();
        let later = T0 + LEASE.as_millis() as i64 + 1;
        assert_eq!(s.prune_locks("delivery/", later).await.unwrap(), 1);
        assert!(s.lock("delivery/a").await.unwrap().is_none());
        assert!(s.lock("delivery/b").await.unwrap().is_some());
        assert!(s.lock("prod").await.unwrap().is_some());
        // `_` and `%` in the prefix are taken literally.
        assert_eq!(s.prune_locks("d_livery/", T0 * 10).await.unwrap(), 0);
    });
}

/// Two handles on one file, as two processes would have, and threads racing through both for
/// one lock at the same instant: exactly one wins each round.
#[test]
fn sqlite_two_handles_race_for_a_lock() {
    const THREADS: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let handles = [
        Arc::new(SqliteStore::open(&path).unwrap()),
        Arc::new(SqliteStore::open(&path).unwrap()),
    ];
    for round in 0..10 {
        let env = format!("race-{round}");
        let barrier = Arc::new(Barrier::new(THREADS));
        let threads: Vec<_> = (0..THREADS)
            .map(|i| {
                let s = Arc::clone(&handles[i % 2]);
                let (env, barrier) = (env.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    common::sdk::block(s.try_lock(&env, &format!("thread-{i}"), "apply", LEASE, T0))
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let won: Vec<&Lock> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(won.len(), 1, "round {round}: {results:?}");
        for r in &results {
            match r {
                Ok(_) => {}
                Err(LockError::Held(holder)) => assert_eq!(holder, won[0]),
                Err(e) => panic!("round {round}: {e}"),
            }
        }
        // Both handles see the winner.
        for s in &handles {
            let seen = common::sdk::block(s.lock(&env)).unwrap();
            assert_eq!(seen.as_ref(), Some(won[0]));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Store locations

#[tokio::test]
async fn open_understands_sqlite_locations_and_refuses_others() {
    let dir = tempfile::tempdir().unwrap();
    match store::open("sqlite", dir.path()).await.unwrap() {
        AnyStore::Sqlite(s) => assert_eq!(s.path(), dir.path().join("formwork.db")),
        other => panic!("{other:?}"),
    }
    let path = dir.path().join("elsewhere/state.db");
    match store::open(&format!("sqlite:{}", path.display()), dir.path())
        .await
        .unwrap()
    {
        AnyStore::Sqlite(s) => assert_eq!(s.path(), path),
        other => panic!("{other:?}"),
    }
    assert!(path.is_file());

    for bad in [
        "",
        "sqlite:",
        "sqlite3",
        "dynamodb:",
        "dynamodb:no spaces",
        "dynamodb:x",
        "postgres://db/formwork",
        "s3://bucket/state",
    ] {
        let err = store::open(bad, dir.path()).await.unwrap_err();
        assert!(matches!(err, StoreError::Location(_)), "{bad:?}: {err}");
        assert!(
            err.to_string().contains("sqlite:PATH or dynamodb:TABLE"),
            "{err}"
        );
    }
}

/// `dynamodb:TABLE` and relative `sqlite:PATH` depend on the process (AWS variables, current
/// directory), so a child process of this test binary opens them: [`child_opens_locations`].
#[test]
fn open_understands_dynamodb_and_relative_sqlite_locations() {
    let endpoint = moto();
    let dir = tempfile::tempdir().unwrap();
    let table = unique("fw-open");
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    endpoint.configure(&mut cmd);
    let out = cmd
        .args([
            "--exact",
            "store::child_opens_locations",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FORMWORK_TEST_STORE_CHILD", &table)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && all.contains("1 passed"), "{all}");
    assert!(dir.path().join("state/here.db").is_file());

    // The table was made in the default region, through AWS_ENDPOINT_URL.
    common::sdk::block(async {
        let client = aws_sdk_dynamodb::Client::new(&common::sdk::config(endpoint, REGION));
        let s = DynamoStore::new(client.clone(), table.clone());
        assert_eq!(
            s.deployed("prod").await.unwrap().map(|d| d.commit),
            Some("from-child".to_string())
        );
        client
            .delete_table()
            .table_name(&table)
            .send()
            .await
            .unwrap();
    });
}

/// Run by [`open_understands_dynamodb_and_relative_sqlite_locations`] in a child process; does
/// nothing otherwise.
#[test]
fn child_opens_locations() {
    let Ok(table) = std::env::var("FORMWORK_TEST_STORE_CHILD") else {
        return;
    };
    common::sdk::block(async {
        let unused = std::path::Path::new("/nonexistent");
        match store::open("sqlite:state/here.db", unused).await.unwrap() {
            AnyStore::Sqlite(s) => assert_eq!(s.path(), std::path::Path::new("state/here.db")),
            other => panic!("{other:?}"),
        }
        let s = store::open(&format!("dynamodb:{table}"), unused)
            .await
            .unwrap();
        assert!(matches!(s, AnyStore::Dynamo(ref d) if d.table() == table));
        s.set_deployed(&Deployed {
            environment: "prod".into(),
            commit: "from-child".into(),
            plan_id: None,
            run_id: "r1".into(),
            at: T0,
        })
        .await
        .unwrap();
    });
}
