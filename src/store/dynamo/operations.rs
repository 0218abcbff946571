//! The [`Store`] operations on DynamoDB: each one as the items it reads and the (conditional or
//! transactional) writes it makes.

use std::time::Duration;

use aws_sdk_dynamodb::types::{Delete, ReturnValue, TransactWriteItem, Update};

use super::attributes::{fields, key, n, s};
use super::items::{
    deployed_from, deployed_item, env_pk, event_from, event_items, lock_from, lock_item, lock_key,
    lock_pk, plan_index_item, plan_item, plan_pk, run_from, run_items, run_keys, run_pk,
    stack_deployed_from, stack_deployed_item, stack_seen_from, stack_seen_item, unit_from,
};
use super::listing::Listing;
use super::requests::condition_failed;
use super::{ATTEMPTS, DynamoStore};
use crate::plan::model::Plan;
use crate::store::{
    Deployed, Event, Lock, LockError, Millis, Run, RunStatus, StackDeployed, StackSeen, Store,
    StoreError, UnitResult, encode_plan, lease_end, unlock_detail,
};

impl Store for DynamoStore {
    async fn save_plan(&self, plan: &Plan) -> Result<(), StoreError> {
        let (created_ms, doc) = encode_plan(plan)?;
        let old = self.get(&plan_pk(&plan.id), "PLAN").await?;
        let mut item = plan_item(plan, created_ms);
        self.put_document(&mut item, &plan.id, doc).await?;
        self.put(item).await?;
        for env in &plan.environments {
            self.put(plan_index_item(&env.name, created_ms, plan))
                .await?;
        }
        if let Some(old) = old {
            self.remove_replaced(&old, plan, created_ms).await?;
        }
        Ok(())
    }

    async fn plan(&self, id: &str) -> Result<Option<Plan>, StoreError> {
        self.load_plan(id).await
    }

    async fn latest_plan(&self, environment: &str) -> Result<Option<Plan>, StoreError> {
        let pk = env_pk(environment);
        let newest = self
            .query(Listing::of(&pk, "PLAN#").newest_first().at_most(1))
            .await?;
        match newest.first() {
            Some(index) => self.load_plan(&fields(index).str("plan_id")?).await,
            None => Ok(None),
        }
    }

    async fn latest_plan_of_commit(
        &self,
        environment: &str,
        commit: &str,
    ) -> Result<Option<Plan>, StoreError> {
        let pk = env_pk(environment);
        let index = self.query(Listing::of(&pk, "PLAN#").newest_first()).await?;
        for item in index {
            let f = fields(&item);
            if f.opt_str("head_commit")?.as_deref() != Some(commit) {
                continue;
            }
            if let Some(plan) = self.load_plan(&f.str("plan_id")?).await? {
                return Ok(Some(plan));
            }
        }
        Ok(None)
    }

    async fn try_lock(
        &self,
        environment: &str,
        owner: &str,
        reason: &str,
        lease: Duration,
        now: Millis,
    ) -> Result<Lock, LockError> {
        for _ in 0..ATTEMPTS {
            let lock = Lock::new(environment, owner, reason, lease, now);
            let taken = self
                .put_if(
                    lock_item(&lock),
                    "attribute_not_exists(pk) OR #expires < :now",
                    &[("#expires", "lease_expires_at")],
                    &[(":now", n(now))],
                )
                .await?;
            if taken {
                return Ok(lock);
            }
            match self.lock(environment).await? {
                Some(held) if held.lease_expires_at >= now => return Err(LockError::Held(held)),
                // Released or run out meanwhile: try again.
                _ => continue,
            }
        }
        Err(self.message(changing_hands(environment)).into())
    }

    async fn renew_lock(
        &self,
        lock: &Lock,
        lease: Duration,
        now: Millis,
    ) -> Result<Lock, LockError> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(lock_key(&lock.environment)))
            .update_expression("SET #expires = :expires")
            .condition_expression("#token = :token")
            .expression_attribute_names("#expires", "lease_expires_at")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":expires", n(lease_end(now, lease)))
            .expression_attribute_values(":token", s(&lock.token))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match updated {
            Ok(out) => Ok(lock_from(&out.attributes.unwrap_or_default())?),
            Err(e) if condition_failed(&e) => Err(LockError::Lost(lock.environment.clone())),
            Err(e) => Err(self.sdk("UpdateItem", e).into()),
        }
    }

    async fn release_lock(&self, lock: &Lock) -> Result<(), StoreError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(lock_key(&lock.environment)))
            .condition_expression("#token = :token")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":token", s(&lock.token))
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(self.sdk("DeleteItem", e)),
        }
    }

    async fn lock(&self, environment: &str) -> Result<Option<Lock>, StoreError> {
        self.get(&lock_pk(environment), "LOCK")
            .await?
            .map(|item| lock_from(&item))
            .transpose()
    }

    async fn force_unlock(
        &self,
        environment: &str,
        actor: &str,
        reason: &str,
        now: Millis,
    ) -> Result<Option<Lock>, StoreError> {
        for _ in 0..ATTEMPTS {
            let Some(lock) = self.lock(environment).await? else {
                return Ok(None);
            };
            let event = Event {
                environment: environment.to_string(),
                at: now,
                kind: "unlock".to_string(),
                actor: actor.to_string(),
                detail: unlock_detail(&lock, reason),
            };
            // The lock goes only if it is still the one read, together with its event.
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(lock_key(environment)))
                .condition_expression("#token = :token")
                .expression_attribute_names("#token", "token")
                .expression_attribute_values(":token", s(&lock.token))
                .build()
                .map_err(|e| self.build_err(e))?;
            let mut writes = vec![TransactWriteItem::builder().delete(delete).build()];
            for item in event_items(&event) {
                writes.push(self.tx_put(item, None)?);
            }
            if self.transact(writes).await? {
                return Ok(Some(lock));
            }
        }
        Err(self.message(changing_hands(environment)))
    }

    async fn start_run(&self, run: &Run) -> Result<(), StoreError> {
        let [own, in_environment, in_all] = run_items(run);
        let writes = vec![
            self.tx_put(own, Some("attribute_not_exists(pk)"))?,
            self.tx_put(in_environment, None)?,
            self.tx_put(in_all, None)?,
        ];
        if self.transact(writes).await? {
            Ok(())
        } else {
            Err(StoreError::Data(format!(
                "a run `{}` was already recorded",
                run.id
            )))
        }
    }

    async fn put_unit(&self, unit: &UnitResult) -> Result<(), StoreError> {
        self.write_unit(unit).await
    }

    async fn finish_run(
        &self,
        run_id: &str,
        status: RunStatus,
        now: Millis,
    ) -> Result<(), StoreError> {
        let Some(item) = self.get(&run_pk(run_id), "RUN").await? else {
            return Err(StoreError::Data(format!("there is no run `{run_id}`")));
        };
        let run = run_from(&item)?;
        let mut writes = Vec::new();
        for (pk, sk) in run_keys(&run) {
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(pk, sk)))
                .update_expression("SET #status = :status, #finished = :finished")
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#finished", "finished_at")
                .expression_attribute_values(":status", s(status.as_str()))
                .expression_attribute_values(":finished", n(now))
                .build()
                .map_err(|e| self.build_err(e))?;
            writes.push(TransactWriteItem::builder().update(update).build());
        }
        if self.transact(writes).await? {
            Ok(())
        } else {
            Err(self.message(format!(
                "run `{run_id}` was being written by someone else; try again"
            )))
        }
    }

    async fn run(&self, id: &str) -> Result<Option<(Run, Vec<UnitResult>)>, StoreError> {
        let pk = run_pk(id);
        let Some(item) = self.get(&pk, "RUN").await? else {
            return Ok(None);
        };
        let run = run_from(&item)?;
        let items = self.query(Listing::of(&pk, "UNIT#")).await?;
        let mut units = items
            .iter()
            .map(unit_from)
            .collect::<Result<Vec<_>, StoreError>>()?;
        units.sort_by_key(|(ord, _)| *ord);
        Ok(Some((run, units.into_iter().map(|(_, u)| u).collect())))
    }

    async fn runs(&self, environment: Option<&str>, limit: usize) -> Result<Vec<Run>, StoreError> {
        let pk = environment.map_or_else(|| "RUNS".to_string(), env_pk);
        self.query(Listing::of(&pk, "RUN#").newest_first().at_most(limit))
            .await?
            .iter()
            .map(run_from)
            .collect()
    }

    async fn unfinished_runs(&self, environment: &str) -> Result<Vec<Run>, StoreError> {
        let pk = env_pk(environment);
        self.query(Listing::of(&pk, "RUN#").newest_first().only_running())
            .await?
            .iter()
            .map(run_from)
            .collect()
    }

    async fn set_deployed(&self, d: &Deployed) -> Result<(), StoreError> {
        self.put(deployed_item(d)).await
    }

    async fn set_stacks_deployed(&self, records: &[StackDeployed]) -> Result<(), StoreError> {
        self.put_each(records.iter().map(stack_deployed_item)).await
    }

    async fn stacks_deployed(&self, environment: &str) -> Result<Vec<StackDeployed>, StoreError> {
        let pk = env_pk(environment);
        self.query(Listing::of(&pk, "STACK#"))
            .await?
            .iter()
            .map(stack_deployed_from)
            .collect()
    }

    async fn set_stacks_seen(&self, records: &[StackSeen]) -> Result<(), StoreError> {
        self.put_each(records.iter().map(stack_seen_item)).await
    }

    async fn stacks_seen(&self, environment: &str) -> Result<Vec<StackSeen>, StoreError> {
        let pk = env_pk(environment);
        self.query(Listing::of(&pk, "SEEN#"))
            .await?
            .iter()
            .map(stack_seen_from)
            .collect()
    }

    async fn deployed(&self, environment: &str) -> Result<Option<Deployed>, StoreError> {
        self.get(&env_pk(environment), "DEPLOYED")
            .await?
            .map(|item| deployed_from(&item))
            .transpose()
    }

    async fn policy_results(&self, keys: &[String]) -> Result<Vec<(String, String)>, StoreError> {
        use futures::{StreamExt, TryStreamExt};
        let found: Vec<Option<(String, String)>> = futures::stream::iter(keys.to_vec())
            .map(|k: String| {
                let pk = policy_pk(&k);
                let get = self.get_owned(pk);
                async move {
                    let item = get.await?;
                    item.map(|item| fields(&item).str("record").map(|r| (k, r)))
                        .transpose()
                }
            })
            .buffer_unordered(16)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    async fn put_policy_results(&self, results: &[(String, String)]) -> Result<(), StoreError> {
        // An item holds at most 400 KB: a larger record is evaluated again next time.
        let items = results
            .iter()
            .filter(|(_, record)| record.len() <= POLICY_RECORD_MAX)
            .map(|(k, record)| {
                let mut item = key(policy_pk(k), "RESULT");
                item.insert("record".to_string(), s(record.as_str()));
                item.insert("at".to_string(), n(crate::store::now()));
                item
            });
        self.put_each(items).await
    }

    async fn record_event(&self, event: &Event) -> Result<(), StoreError> {
        let writes = event_items(event)
            .into_iter()
            .map(|item| self.tx_put(item, None))
            .collect::<Result<Vec<_>, _>>()?;
        if self.transact(writes).await? {
            Ok(())
        } else {
            Err(self.message("recording an event was refused; try again".to_string()))
        }
    }

    async fn prune_locks(&self, _prefix: &str, _before: Millis) -> Result<usize, StoreError> {
        // DynamoDB's time to live removes them (the `expires` attribute).
        Ok(0)
    }

    async fn events(
        &self,
        environment: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let pk = environment.map_or_else(|| "EVENTS".to_string(), env_pk);
        self.query(Listing::of(&pk, "EVENT#").newest_first().at_most(limit))
            .await?
            .iter()
            .map(event_from)
            .collect()
    }
}

/// Why a lock could not be taken or forced open after [`ATTEMPTS`] tries.
/// The largest policy record kept in an item (DynamoDB items hold at most 400 KB).
const POLICY_RECORD_MAX: usize = 350_000;

/// The partition of a policy result.
fn policy_pk(key: &str) -> String {
    format!("POLICY#{key}")
}

fn changing_hands(environment: &str) -> String {
    format!("the lock of environment `{environment}` kept changing hands; try again")
}
