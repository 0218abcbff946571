//! Leases: time-limited holds in the state store that say who works on what, for every kind of
//! hold formwork takes — an environment's apply lock, a pull request's claim on an environment,
//! one agent replica's work on an environment, a webhook delivery already handled, the
//! scheduled drift check.
//!
//! A hold is taken with [`take`] (once: claims, deliveries) or [`hold`] (renewed in the
//! background every third of its lease for as long as the work runs: apply locks, work). A
//! held lease can be lost — its lease ran out while the store could not be reached, or someone
//! forced it open — and the work is told through a [`LossSignal`]: it stops at its next safe
//! point and says so. Work in progress left by a formwork process of this machine that no
//! longer runs (killed, crashed) is taken over at once rather than when its lease runs out, and
//! the takeover is recorded in the audit trail; a handled delivery stays handled.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::store::{Lock, LockError, Store, StoreError, now};

/// What a lease is on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    /// An environment's apply lock: one apply at a time.
    Apply(String),
    /// A pull request's claim on an environment it plans: other pull requests wait for it.
    Claim(String),
    /// One agent replica's work on an environment (bringing it to the default branch).
    Work(String),
    /// A webhook delivery already handled, by its id: a redelivery to any replica is dropped.
    Delivery(String),
    /// One agent replica's scheduled drift check of the environments.
    Drift,
}

impl Subject {
    /// The key of its record in the store.
    pub fn key(&self) -> String {
        match self {
            Subject::Apply(env) => env.clone(),
            Subject::Claim(env) => format!("claim/{env}"),
            Subject::Work(env) => format!("work/{env}"),
            Subject::Delivery(id) => format!("delivery/{id}"),
            // An apply lock's key is an environment name, which has no `/`.
            Subject::Drift => "drift/check".to_string(),
        }
    }

    /// Whether its hold is work in progress, which a holder that died left unfinished (and
    /// another process may take over), rather than a record that outlives its holder (a
    /// handled delivery stays handled after the process that handled it is gone).
    pub fn is_work_in_progress(&self) -> bool {
        !matches!(self, Subject::Delivery(_))
    }

    /// What it is, for messages: "the apply lock of `prod`".
    pub fn describe(&self) -> String {
        match self {
            Subject::Apply(env) => format!("the apply lock of `{env}`"),
            Subject::Claim(env) => format!("the claim on `{env}`"),
            Subject::Work(env) => format!("the work on `{env}`"),
            Subject::Delivery(id) => format!("delivery {id}"),
            Subject::Drift => "the scheduled drift check".to_string(),
        }
    }
}

/// The owner name of a pull request's claims.
pub fn pull_request_owner(number: u64) -> String {
    format!("pull request #{number}")
}

/// `user@host (pid N)`: the owner name of this process.
pub fn process_owner() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("{user}@{} (pid {})", hostname(), std::process::id())
}

/// This machine's name.
fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Whether an owner written by [`process_owner`] (possibly behind a prefix, as in
/// `formwork serve user@host (pid N)`) names a process of this machine that no longer runs.
/// Only answered where the process table can be read (`/proc`); elsewhere, and for other
/// owners, `false`: the hold is then recovered when its lease runs out.
pub fn holder_is_gone(owner: &str) -> bool {
    let Some((who, pid)) = owner.rsplit_once(" (pid ") else {
        return false;
    };
    let Ok(pid) = pid.trim_end_matches(')').parse::<u32>() else {
        return false;
    };
    let Some((_, host)) = who.rsplit_once('@') else {
        return false;
    };
    host == hostname()
        && std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Takes a lease on `subject` for `lease`, unless someone else holds it (then
/// [`LockError::Held`] says who). Work in progress held by a process of this machine that is
/// gone is taken over, and the takeover recorded.
pub async fn take<S: Store>(
    store: &S,
    subject: &Subject,
    owner: &str,
    reason: &str,
    lease: Duration,
) -> Result<Lock, LockError> {
    let key = subject.key();
    match store.try_lock(&key, owner, reason, lease, now()).await {
        Err(LockError::Held(held))
            if subject.is_work_in_progress()
                && held.owner != owner
                && holder_is_gone(&held.owner) =>
        {
            tracing::warn!(subject = %subject.describe(), holder = %held.owner, "taking over a hold whose process is gone");
            store
                .force_unlock(
                    &key,
                    owner,
                    &format!("its holder {} is no longer running", held.owner),
                    now(),
                )
                .await?;
            store.try_lock(&key, owner, reason, lease, now()).await
        }
        other => other,
    }
}

/// Takes a lease on `subject` for `owner` (as [`take`]), or renews it when `owner` holds it
/// already: a pull request's claim, renewed at each of its plans.
pub async fn take_or_renew<S: Store>(
    store: &S,
    subject: &Subject,
    owner: &str,
    reason: &str,
    lease: Duration,
) -> Result<Lock, LockError> {
    if let Some(held) = store.lock(&subject.key()).await?
        && held.owner == owner
        && held.lease_expires_at >= now()
    {
        match store.renew_lock(&held, lease, now()).await {
            Err(LockError::Lost(_)) => {}
            other => return other,
        }
    }
    take(store, subject, owner, reason, lease).await
}

/// Releases `owner`'s lease on `subject`; whether it held one (a lease of someone else is left
/// alone).
pub async fn release_if_owner<S: Store>(
    store: &S,
    subject: &Subject,
    owner: &str,
) -> Result<bool, StoreError> {
    match store.lock(&subject.key()).await? {
        Some(l) if l.owner == owner => {
            store.release_lock(&l).await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Who holds a lease on `subject` now (a lease that ran out is held by nobody).
pub async fn holder<S: Store>(store: &S, subject: &Subject) -> Result<Option<Lock>, StoreError> {
    let t = now();
    Ok(store
        .lock(&subject.key())
        .await?
        .filter(|l| l.lease_expires_at >= t))
}

/// Removes the lease on `subject` whoever holds it, recording who did it and why; the lease
/// removed, if there was one.
pub async fn force_release<S: Store>(
    store: &S,
    subject: &Subject,
    actor: &str,
    reason: &str,
) -> Result<Option<Lock>, StoreError> {
    store
        .force_unlock(&subject.key(), actor, reason, now())
        .await
}

/// Tells work whether the lease it runs under was lost.
#[derive(Clone, Debug)]
pub struct LossSignal(watch::Receiver<bool>);

impl LossSignal {
    /// A signal that never fires: for work under no lease.
    pub fn never() -> LossSignal {
        let (tx, rx) = watch::channel(false);
        // The receiver keeps the last value once the sender is gone.
        drop(tx);
        LossSignal(rx)
    }

    /// Whether the lease was lost.
    pub fn is_lost(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes when the lease is lost (never, for a lease released in good order).
    pub async fn lost(&mut self) {
        if self.0.wait_for(|lost| *lost).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// A lease held and renewed until it is released.
pub struct Held {
    lost: LossSignal,
    renewal: JoinHandle<Lock>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Takes a lease on `subject` (as [`take`]) and renews it every third of `lease` until it is
/// released. When a renewal finds the lease gone (forced open, or taken over after running
/// out) or cannot reach the store before the lease ends, the lease is lost: the [`LossSignal`]
/// fires and renewal stops.
pub async fn hold<S: Store + 'static>(
    store: Arc<S>,
    subject: Subject,
    owner: &str,
    reason: &str,
    lease: Duration,
) -> Result<Held, LockError> {
    let lock = take(store.as_ref(), &subject, owner, reason, lease).await?;
    let (lost_tx, lost_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let renewal = tokio::spawn(renew(store, subject, lock, lease, lost_tx, stop_rx));
    Ok(Held {
        lost: LossSignal(lost_rx),
        renewal,
        stop: Some(stop_tx),
    })
}

async fn renew<S: Store>(
    store: Arc<S>,
    subject: Subject,
    mut lock: Lock,
    lease: Duration,
    lost: watch::Sender<bool>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Lock {
    loop {
        tokio::select! {
            _ = &mut stop => return lock,
            () = tokio::time::sleep(lease / 3) => {}
        }
        match store.renew_lock(&lock, lease, now()).await {
            Ok(l) => lock = l,
            Err(LockError::Lost(_)) | Err(LockError::Held(_)) => {
                tracing::error!(subject = %subject.describe(), "the lease was lost: the work stops at its next safe point");
                let _ = lost.send(true);
                return lock;
            }
            Err(LockError::Store(e)) if now() >= lock.lease_expires_at => {
                tracing::error!(subject = %subject.describe(), error = %e, "the lease ran out while the store could not be reached: the work stops at its next safe point");
                let _ = lost.send(true);
                return lock;
            }
            Err(e) => {
                tracing::warn!(subject = %subject.describe(), error = %e, "could not renew the lease; trying again")
            }
        }
    }
}

impl Held {
    /// A signal for the work done under the lease.
    pub fn signal(&self) -> LossSignal {
        self.lost.clone()
    }

    /// Whether the lease was lost.
    pub fn is_lost(&self) -> bool {
        self.lost.is_lost()
    }

    /// Stops renewing and releases the lease (unless it was lost: then it is someone else's).
    pub async fn release<S: Store>(mut self, store: &S) -> Result<(), StoreError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let lock = match (&mut self.renewal).await {
            Ok(lock) => lock,
            Err(_) => return Ok(()),
        };
        if self.lost.is_lost() {
            return Ok(());
        }
        store.release_lock(&lock).await
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // Not released in good order (the work panicked or was cancelled): stop renewing, and
        // let the lease run out.
        self.renewal.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_have_their_keys() {
        assert_eq!(Subject::Apply("prod".into()).key(), "prod");
        assert_eq!(Subject::Claim("prod".into()).key(), "claim/prod");
        assert_eq!(Subject::Work("prod".into()).key(), "work/prod");
        assert_eq!(Subject::Delivery("g-1".into()).key(), "delivery/g-1");
    }

    #[test]
    fn a_gone_holder_is_recognised_only_on_this_machine() {
        let me = process_owner();
        assert!(!holder_is_gone(&me));
        assert!(!holder_is_gone(&format!("formwork serve {me}")));
        let gone = me.replace(&format!("(pid {})", std::process::id()), "(pid 4294967295)");
        assert!(holder_is_gone(&gone));
        assert!(holder_is_gone(&format!("formwork serve {gone}")));
        assert!(!holder_is_gone("someone@elsewhere (pid 4294967295)"));
        assert!(!holder_is_gone("pull request #42"));
    }

    #[tokio::test]
    async fn a_signal_that_never_fires() {
        let s = LossSignal::never();
        assert!(!s.is_lost());
        let mut s2 = s.clone();
        let waited =
            tokio::time::timeout(Duration::from_millis(20), async move { s2.lost().await }).await;
        assert!(waited.is_err());
    }
}
