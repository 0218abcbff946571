//! Running a stack's hooks: each command with `sh -c` in a checkout of the commit applied,
//! with the stack's facts (and, after the apply, its outputs) as environment variables, under a
//! timeout; its output masked and told to the observer; a failure failing the stack. And the
//! checkout itself, made for an apply whose stacks have hooks and removed after it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::stack_ops::RunContext;
use crate::desired::{Hook, Phase, Unit};
use crate::plan::model::UnitPlan;
use crate::store::Store;

/// The most lines of a hook's output kept for the failure message.
const TAIL_LINES: usize = 20;

/// A directory holding the commit's config files while an apply runs; removed when dropped.
pub struct Checkout {
    dir: PathBuf,
}

impl Checkout {
    /// Writes the config tree of `commit` of `repo` into a new directory.
    pub fn of(repo: &crate::workflow::ConfigRepo, commit: &str) -> Result<Checkout, String> {
        let dir = std::env::temp_dir().join(format!(
            "formwork-hooks-{}-{}",
            std::process::id(),
            &crate::template::sha256_hex(
                format!("{commit}{:?}", std::time::SystemTime::now()).as_bytes()
            )[..12]
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("making a checkout for hooks in {}: {e}", dir.display()))?;
        let checkout = Checkout { dir };
        repo.export_at(commit, &checkout.dir)
            .map_err(|e| format!("writing out commit {commit} for hooks: {e}"))?;
        Ok(checkout)
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl<S: Store> RunContext<S> {
    /// Runs the hooks of `phase` of the plan's stack, in order; the first failure stops them and
    /// is returned as the stack's failure message.
    pub(super) async fn run_hooks(&self, u: &UnitPlan, phase: Phase) -> Result<(), String> {
        let env = self.planner.environment();
        let Some(unit) = env.units.get(&u.stack) else {
            return Ok(());
        };
        let hooks = unit.hooks.of(phase);
        if hooks.is_empty() {
            return Ok(());
        }
        if !self.options.run_hooks {
            return Err(format!(
                "not applied: the stack has {} hooks, and hooks are never run for a pull request from a fork; merge it, and the merge is applied with its hooks",
                phase.as_str()
            ));
        }
        let Some(dir) = &self.workdir else {
            return Err(format!(
                "not applied: no checkout of commit {} to run its {} hooks in",
                self.commit,
                phase.as_str()
            ));
        };
        let vars = self.hook_env(unit, u, phase).await;
        for (i, hook) in hooks.iter().enumerate() {
            self.observer.hook_output(
                &u.stack,
                &self
                    .masker
                    .scrub(&format!("{} hook {}: {}", phase.as_str(), i + 1, hook.run)),
            );
            self.run_one(u, hook, dir, &vars).await.map_err(|why| {
                format!(
                    "{} hook {} (`{}`, {}) {why}",
                    phase.as_str(),
                    i + 1,
                    self.masker.scrub(&hook.run),
                    hook.loc
                )
            })?;
        }
        Ok(())
    }

    /// The environment variables a hook of `unit` gets besides the runner's own.
    async fn hook_env(&self, unit: &Unit, u: &UnitPlan, phase: Phase) -> Vec<(String, String)> {
        let env = self.planner.environment();
        let mut vars = vec![
            ("FORMWORK_ENVIRONMENT".to_string(), env.name.clone()),
            ("FORMWORK_PIPELINE".to_string(), env.pipeline.clone()),
            ("FORMWORK_STACK".to_string(), unit.stack.clone()),
            ("FORMWORK_STACK_NAME".to_string(), unit.stack_name.clone()),
            ("FORMWORK_ACCOUNT".to_string(), unit.account.clone()),
            ("FORMWORK_REGION".to_string(), unit.region.clone()),
            ("FORMWORK_COMMIT".to_string(), self.commit.clone()),
            ("FORMWORK_PHASE".to_string(), phase.as_str().to_string()),
            (
                "FORMWORK_ACTION".to_string(),
                format!("{:?}", u.action).to_lowercase(),
            ),
            ("AWS_REGION".to_string(), unit.region.clone()),
            ("AWS_DEFAULT_REGION".to_string(), unit.region.clone()),
        ];
        if phase == Phase::AfterApply {
            match self
                .session_of(u)
                .cfn
                .describe_stack(&unit.stack_name)
                .await
            {
                Ok(Some(s)) => {
                    vars.push(("FORMWORK_STACK_ID".to_string(), s.stack_id.clone()));
                    for (k, v) in s.outputs {
                        vars.push((format!("FORMWORK_OUTPUT_{k}"), v));
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(stack = %unit.stack, error = %e, "the stack's outputs are not given to its hooks")
                }
            }
        }
        vars
    }

    /// Runs one command to its end or its timeout; `Err` says how it failed, with the last
    /// lines it wrote.
    async fn run_one(
        &self,
        u: &UnitPlan,
        hook: &Hook,
        dir: &Path,
        vars: &[(String, String)],
    ) -> Result<(), String> {
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&hook.run)
            .current_dir(dir)
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("could not start: {e}"))?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let readers = [
            child.stdout.take().map(|o| forward(o, tx.clone())),
            child.stderr.take().map(|e| forward(e, tx.clone())),
        ];
        drop(tx);
        let mut tail: Vec<String> = Vec::new();
        let timeout = Duration::from_secs(hook.timeout_seconds);
        let waited = tokio::time::timeout(timeout, async {
            while let Some(line) = rx.recv().await {
                let line = self.masker.scrub(&line);
                self.observer.hook_output(&u.stack, &line);
                tail.push(line);
                if tail.len() > TAIL_LINES {
                    tail.remove(0);
                }
            }
            child.wait().await
        })
        .await;
        for r in readers.into_iter().flatten() {
            r.abort();
        }
        let last = if tail.is_empty() {
            String::new()
        } else {
            format!("; its last output:\n{}", tail.join("\n"))
        };
        match waited {
            Err(_) => {
                let _ = child.kill().await;
                Err(format!(
                    "did not finish within {} seconds and was stopped{last}",
                    hook.timeout_seconds
                ))
            }
            Ok(Err(e)) => Err(format!("could not be waited for: {e}")),
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(match status.code() {
                Some(code) => format!("failed with exit code {code}{last}"),
                None => format!("was ended by a signal{last}"),
            }),
        }
    }
}

/// Sends each line `from` writes to `to`, until it closes.
fn forward(
    from: impl AsyncRead + Unpin + Send + 'static,
    to: tokio::sync::mpsc::UnboundedSender<String>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(from).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if to.send(line).is_err() {
                break;
            }
        }
    })
}
