// The deliveries of scripts/bench-serve: GitHub's example payloads (@octokit/webhooks-examples,
// installed by `scripts/github-mock setup`), edited to fit the agent's repository, signed as
// GitHub signs them (X-Hub-Signature-256: HMAC-SHA256 of the body). Deterministic for a seed.
//
// Of n deliveries: n/10 (rounded down) are duplicates (the same X-GitHub-Delivery id and body as
// an earlier good delivery, sent again as GitHub's redelivery does), n/10 have a bad signature
// (signed with another secret; each with an id of its own), the rest are unique good deliveries:
// 80 % `issue_comment` `created` on a pull request whose body is not a `/formwork` command (the
// agent queues a job that ends at once, with no GitHub or AWS call), 10 % `ping`, 10 % `push` to
// a branch that is not the default one (acknowledged, nothing queued).

import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";

export const REPO = "octo-org/config";

// mulberry32: a small seeded PRNG, so every run sends the same deliveries.
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle(xs, rand) {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}

function uuid(rand) {
  const h = Array.from({ length: 32 }, () => Math.floor(rand() * 16).toString(16)).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20)}`;
}

export function sign(secret, body) {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

function fitRepository(r) {
  r.full_name = REPO;
  r.name = REPO.split("/")[1];
  r.default_branch = "main";
  if (r.owner) r.owner.login = REPO.split("/")[0];
  r.clone_url = `https://github.com/${REPO}.git`;
  r.html_url = `https://github.com/${REPO}`;
}

/// The example payloads used, by kind: comment, ping, push.
export function templates(indexJson) {
  const index = JSON.parse(readFileSync(indexJson, "utf8"));
  const of = (name) => {
    const e = index.find((x) => x.name === name);
    if (!e) throw new Error(`no examples of ${name} in ${indexJson}`);
    return e.examples;
  };
  const comment = of("issue_comment").filter((x) => x.action === "created" && x.repository);
  const ping = of("ping").filter((x) => x.repository && x.hook_id);
  const push = of("push").filter((x) => x.repository && x.ref);
  if (!comment.length || !ping.length || !push.length) {
    throw new Error(`the examples in ${indexJson} lack issue_comment created, ping or push`);
  }
  return { comment, ping, push };
}

const NOTES = [
  "Looks good to me.",
  "Could we bump the Redis snapshot retention here as well?",
  "Thanks! I will take another look after lunch.",
  "The staging plan above shows no replacements, nice.",
  "nit: the description says three stacks but the plan touches two.",
];

function payload(kind, k, tpl, rand) {
  const list = tpl[kind];
  const p = structuredClone(list[k % list.length]);
  fitRepository(p.repository);
  if (kind === "comment") {
    const number = 1 + Math.floor(rand() * 60);
    p.action = "created";
    p.issue.number = number;
    p.issue.pull_request = {
      url: `https://api.github.com/repos/${REPO}/pulls/${number}`,
      html_url: `https://github.com/${REPO}/pull/${number}`,
      diff_url: `https://github.com/${REPO}/pull/${number}.diff`,
      patch_url: `https://github.com/${REPO}/pull/${number}.patch`,
      merged_at: null,
    };
    p.comment.id = 2_000_000_000 + k;
    p.comment.body = `${NOTES[k % NOTES.length]} (note ${k})`;
  } else if (kind === "push") {
    p.ref = `refs/heads/feature-${k % 40}`;
    p.base_ref = null;
    p.deleted = false;
  }
  return p;
}

/// Makes the deliveries: [{seq, id, event, kind, cls, body (Buffer), headers}], where cls is
/// "good" (first time this id is sent), "dup" (an earlier good one again) or "bad".
/// `gap`: a duplicate repeats a delivery sent at least this many places before it.
export function makeDeliveries({ indexJson, n, secret, wrongSecret, seed = 20240601, gap = 32 }) {
  const rand = prng(seed);
  const tpl = templates(indexJson);
  const nDup = Math.floor(n / 10);
  const nBad = Math.floor(n / 10);
  const nGood = n - nDup - nBad;
  if (nGood < 1) throw new Error("too few deliveries");
  const classes = shuffle(
    [...Array(nGood).fill("good"), ...Array(nBad).fill("bad"), ...Array(nDup).fill("dup")],
    rand,
  );
  // A duplicate needs a good delivery at least `gap` places before it: move early ones later.
  for (let i = 0; i < classes.length; i++) {
    if (classes[i] !== "dup") continue;
    const goodBefore = classes.slice(0, Math.max(0, i - gap + 1)).some((c) => c === "good");
    if (goodBefore) continue;
    const j = classes.findIndex((c, x) => x > i + gap && c === "good");
    if (j < 0) throw new Error("cannot place the duplicates: too few deliveries");
    [classes[i], classes[j]] = [classes[j], classes[i]];
    i--;
  }
  const kindOf = () => {
    const r = rand();
    return r < 0.8 ? "comment" : r < 0.9 ? "ping" : "push";
  };
  const eventOf = { comment: "issue_comment", ping: "ping", push: "push" };
  const out = [];
  const goods = [];
  for (let seq = 0; seq < classes.length; seq++) {
    const cls = classes[seq];
    let d;
    if (cls === "dup") {
      const pool = goods.filter((g) => g.seq <= seq - gap);
      const orig = pool[Math.floor(rand() * pool.length)];
      d = { ...orig, seq, cls, of: orig.seq };
    } else {
      const kind = kindOf();
      const body = Buffer.from(JSON.stringify(payload(kind, seq, tpl, rand)));
      const id = uuid(rand);
      d = {
        seq,
        id,
        event: eventOf[kind],
        kind,
        cls,
        body,
        signature: sign(cls === "bad" ? wrongSecret : secret, body),
      };
      if (cls === "good") goods.push(d);
    }
    d.headers = {
      "content-type": "application/json",
      "user-agent": "GitHub-Hookshot/bench-serve",
      "x-github-event": d.event,
      "x-github-delivery": d.id,
      "x-github-hook-id": "424242",
      "x-hub-signature-256": d.signature,
    };
    out.push(d);
  }
  return out;
}

/// What was sent, counted: {total, good, dup, bad, goodBy: {comment, ping, push}, ...}.
export function tally(ds) {
  const t = { total: ds.length, good: 0, dup: 0, bad: 0 };
  for (const cls of ["good", "dup", "bad"]) t[`${cls}By`] = { comment: 0, ping: 0, push: 0 };
  for (const d of ds) {
    t[d.cls]++;
    t[`${d.cls}By`][d.kind]++;
  }
  return t;
}
