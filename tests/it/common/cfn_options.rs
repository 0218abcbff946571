//! A CloudFormation that keeps every stack option, in front of moto: moto (5.x) keeps a stack's
//! role and notification topics only from the change set that creates it, keeps no rollback
//! configuration, and answers UpdateTerminationProtection with an internal error. This layer
//! (a [`FakeAws`] forwarding to moto) keeps those options per stack as AWS does — taken from a
//! change set when it is executed, or from UpdateStack — answers UpdateTerminationProtection
//! with the response the AWS API reference records, and writes the options into DescribeStacks
//! answers. Everything else (stacks, change sets, stack policies) is moto's. Every request is
//! recorded, so a test can assert what formwork sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::fake_aws::{FakeAws, decoded, form_value, forward_form};

/// The options a stack has.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Kept {
    pub role: Option<String>,
    pub topics: Option<Vec<String>>,
    pub alarms: Option<Vec<String>>,
    pub monitoring: Option<u32>,
    pub protected: bool,
}

#[derive(Default)]
struct State {
    /// By stack name.
    stacks: HashMap<String, Kept>,
    /// Options of change sets not executed yet, by change set ARN: the stack name and options.
    pending: HashMap<String, (String, Kept)>,
}

/// The layer; `fake` is where formwork is pointed.
pub struct OptionsKeeping {
    pub fake: FakeAws,
    state: Arc<Mutex<State>>,
}

/// The values of a list parameter of a form body (`Name.member.1`, `Name.member.2`, …);
/// `None` when it is absent.
fn members(body: &str, prefix: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for n in 1.. {
        match form_value(body, &format!("{prefix}.member.{n}")) {
            Some(v) => out.push(decoded(&v)),
            None => break,
        }
    }
    // An empty list is sent as `Name=` alone.
    if out.is_empty() && form_value(body, prefix).is_none() {
        return None;
    }
    Some(out)
}

/// The options a CreateChangeSet or UpdateStack request gives.
fn options_of(body: &str) -> Kept {
    Kept {
        role: form_value(body, "RoleARN").map(|v| decoded(&v)),
        topics: members(body, "NotificationARNs"),
        alarms: {
            let mut out = Vec::new();
            for n in 1.. {
                match form_value(
                    body,
                    &format!("RollbackConfiguration.RollbackTriggers.member.{n}.Arn"),
                ) {
                    Some(v) => out.push(decoded(&v)),
                    None => break,
                }
            }
            let given = form_value(body, "RollbackConfiguration.MonitoringTimeInMinutes").is_some()
                || !out.is_empty();
            given.then_some(out)
        },
        monitoring: form_value(body, "RollbackConfiguration.MonitoringTimeInMinutes")
            .and_then(|v| v.parse().ok()),
        protected: false,
    }
}

/// `kept` with what `given` sets: what is not given stays (as in AWS).
fn merge(kept: &mut Kept, given: &Kept) {
    if given.role.is_some() {
        kept.role = given.role.clone();
    }
    if given.topics.is_some() {
        kept.topics = given.topics.clone();
    }
    if given.alarms.is_some() {
        kept.alarms = given.alarms.clone();
        kept.monitoring = given.monitoring;
    }
}

/// `body` without the parameters moto must not see: notification topics (moto publishes to
/// them and fails on a topic it does not have).
fn without_topics(body: &str) -> String {
    body.split('&')
        .filter(|kv| !kv.starts_with("NotificationARNs"))
        .collect::<Vec<_>>()
        .join("&")
}

fn tag(xml: &str, name: &str) -> Option<String> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml[start..end].to_string())
}

/// `xml` without its `<name>…</name>` (or `<name/>`) elements at the stack's level.
fn strip(xml: &str, name: &str) -> String {
    let mut out = xml.replace(&format!("<{name}/>"), "");
    while let (Some(a), Some(b)) = (
        out.find(&format!("<{name}>")),
        out.find(&format!("</{name}>")),
    ) {
        out.replace_range(a..b + name.len() + 3, "");
    }
    out
}

/// One stack's member of a DescribeStacks answer with its kept options written in.
fn rewrite_member(member: &str, kept: &Kept) -> String {
    let mut m = strip(member, "EnableTerminationProtection");
    m = strip(&m, "RoleARN");
    m = strip(&m, "NotificationARNs");
    m = strip(&m, "RollbackConfiguration");
    let mut add = format!(
        "<EnableTerminationProtection>{}</EnableTerminationProtection>",
        kept.protected
    );
    if let Some(r) = &kept.role {
        add.push_str(&format!("<RoleARN>{r}</RoleARN>"));
    }
    let topics = kept.topics.clone().unwrap_or_default();
    add.push_str("<NotificationARNs>");
    for t in topics {
        add.push_str(&format!("<member>{t}</member>"));
    }
    add.push_str("</NotificationARNs>");
    if let Some(alarms) = &kept.alarms {
        add.push_str("<RollbackConfiguration><RollbackTriggers>");
        for a in alarms {
            add.push_str(&format!(
                "<member><Arn>{a}</Arn><Type>AWS::CloudWatch::Alarm</Type></member>"
            ));
        }
        add.push_str(&format!(
            "</RollbackTriggers><MonitoringTimeInMinutes>{}</MonitoringTimeInMinutes></RollbackConfiguration>",
            kept.monitoring.unwrap_or(0)
        ));
    }
    match m.find("<StackStatus>") {
        Some(at) => {
            m.insert_str(at, &add);
            m
        }
        None => m,
    }
}

impl OptionsKeeping {
    /// The layer in front of the moto at `moto_url`, for stacks of `region`.
    pub fn start(moto_url: &str, region: &'static str) -> OptionsKeeping {
        let fake = FakeAws::start();
        fake.forward_to(moto_url);
        let state: Arc<Mutex<State>> = Arc::default();
        let up = moto_url.to_string();

        let (st, u) = (state.clone(), up.clone());
        fake.respond_with("CreateChangeSet", move |body| {
            let given = options_of(body);
            let stack = decoded(&form_value(body, "StackName").unwrap_or_default());
            let (status, answer) = forward_form(&u, region, &without_topics(body));
            if let Some(id) = tag(&answer, "Id") {
                st.lock().unwrap().pending.insert(id, (stack, given));
            }
            (status, answer)
        });
        let (st, u) = (state.clone(), up.clone());
        fake.respond_with("ExecuteChangeSet", move |body| {
            let id = decoded(&form_value(body, "ChangeSetName").unwrap_or_default());
            let (status, answer) = forward_form(&u, region, body);
            if status == 200 {
                let mut s = st.lock().unwrap();
                if let Some((stack, given)) = s.pending.remove(&id) {
                    merge(s.stacks.entry(stack).or_default(), &given);
                }
            }
            (status, answer)
        });
        let (st, u) = (state.clone(), up.clone());
        fake.respond_with("UpdateStack", move |body| {
            let given = options_of(body);
            let stack = decoded(&form_value(body, "StackName").unwrap_or_default());
            merge(st.lock().unwrap().stacks.entry(stack).or_default(), &given);
            // moto finds "no updates" in an update of options alone (AWS runs the update); the
            // options are kept above all the same.
            forward_form(&u, region, &without_topics(body))
        });
        let st = state.clone();
        fake.respond_with("UpdateTerminationProtection", move |body| {
            let stack = decoded(&form_value(body, "StackName").unwrap_or_default());
            let on = form_value(body, "EnableTerminationProtection").as_deref() == Some("true");
            st.lock().unwrap().stacks.entry(stack.clone()).or_default().protected = on;
            (
                200,
                format!(
                    "<UpdateTerminationProtectionResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><UpdateTerminationProtectionResult><StackId>arn:aws:cloudformation:{region}:123456789012:stack/{stack}/1</StackId></UpdateTerminationProtectionResult><ResponseMetadata><RequestId>utp</RequestId></ResponseMetadata></UpdateTerminationProtectionResponse>"
                ),
            )
        });
        let (st, u) = (state.clone(), up);
        fake.respond_with("DescribeStacks", move |body| {
            let (status, answer) = forward_form(&u, region, body);
            if status != 200 {
                return (status, answer);
            }
            let s = st.lock().unwrap();
            let mut parts = answer.split("<member><StackId>");
            let mut out = parts.next().unwrap_or_default().to_string();
            for part in parts {
                let member = format!("<member><StackId>{part}");
                let name = tag(&member, "StackName").unwrap_or_default();
                let kept = s.stacks.get(&name).cloned().unwrap_or_default();
                out.push_str(&rewrite_member(&member, &kept));
            }
            (status, out)
        });
        OptionsKeeping { fake, state }
    }

    /// The options kept for `stack`.
    pub fn kept(&self, stack: &str) -> Kept {
        self.state
            .lock()
            .unwrap()
            .stacks
            .get(stack)
            .cloned()
            .unwrap_or_default()
    }

    /// The actions received, in order, from the `from`-th request on.
    pub fn actions_since(&self, from: usize) -> Vec<String> {
        self.fake
            .requests()
            .into_iter()
            .skip(from)
            .filter_map(|r| r.action)
            .collect()
    }
}
