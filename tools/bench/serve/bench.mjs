// The load generator and report of scripts/bench-serve (which starts the servers; see there).
//
//   node bench.mjs wait URL TIMEOUT_S              until GET URL answers 200
//   node bench.mjs wait-settled URL TIMEOUT_S      until the agent at URL has reconciled once
//                                                  and is idle (queue 0, jobs running 0)
//   node bench.mjs run --formwork URL --formwork-pid PID --peer URL --peer-pid PID
//        --examples INDEX_JSON --deliveries N --concurrency C --rounds R --keepalive 0|1
//        --secret S [--out DIR]
//
// `run` makes the deliveries (deliveries.mjs), sends them to both servers in rounds (the same
// slice of deliveries to each, the order alternating ABBA so that the machine's load falls on
// both alike), C requests in flight at a time, timing each from the request's start to the last
// byte of its response; samples each server's VmRSS every 10 ms while it is under load (and
// reads VmHWM, reset through /proc/PID/clear_refs before the load); then waits for the agent's
// queue to drain and checks what each server counted against what was sent.
// Exit status: 0 checked (targets met or not), 1 deliveries lost or double-queued, 2 no scene.

import http from "node:http";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { loadavg, cpus } from "node:os";
import { makeDeliveries, tally } from "./deliveries.mjs";

const TARGET_IDLE_RSS_MIB = 30;
const TARGET_P99_MS = 20;
const TICKS = 100; // USER_HZ: the unit of /proc's CPU times on Linux

function die(code, msg) {
  console.error(`bench-serve: ${msg}`);
  process.exit(code);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function get(url, timeoutMs = 5000) {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
      res.on("error", () => resolve({ status: 0, body: "" }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve({ status: 0, body: "" }));
  });
}

/// Prometheus text → {"name{labels}": value}.
function parseMetrics(text) {
  const m = {};
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    m[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return m;
}

async function metrics(base) {
  const r = await get(`${base}/metrics`);
  if (r.status !== 200) throw new Error(`GET ${base}/metrics answered ${r.status}`);
  return parseMetrics(r.body);
}

const delivered = (m, outcome) => m[`formwork_webhook_deliveries_total{outcome="${outcome}"}`] ?? 0;
const runsOf = (m, kind, outcome) =>
  Object.entries(m)
    .filter(([k]) => k.startsWith(`formwork_runs_total{kind="${kind}"`) && (!outcome || k.includes(`outcome="${outcome}"`)))
    .reduce((s, [, v]) => s + v, 0);

async function waitUntil(what, timeoutS, ok) {
  const deadline = Date.now() + timeoutS * 1000;
  for (;;) {
    if (await ok()) return;
    if (Date.now() > deadline) die(2, `timed out after ${timeoutS} s waiting for ${what}`);
    await sleep(100);
  }
}

function procStatus(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (k) => Number((s.match(new RegExp(`^${k}:\\s+(\\d+) kB`, "m")) || [])[1] ?? NaN);
    return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
  } catch {
    return { rss: NaN, hwm: NaN };
  }
}

/// CPU seconds used by a process (all its threads), from /proc/PID/stat.
function cpuOf(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / TICKS;
  } catch {
    return NaN;
  }
}

/// The machine's CPU seconds so far: [busy, total], from /proc/stat.
function machineCpu() {
  try {
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return [(total - f[3] - f[4]) / TICKS, total / TICKS];
  } catch {
    return [NaN, NaN];
  }
}

function resetPeak(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

function args(argv) {
  const a = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--")) die(2, `unexpected argument ${argv[i]}`);
    a[argv[i].slice(2)] = argv[i + 1];
  }
  return a;
}

/// Sends `ds` to `base` with `conc` in flight; samples `pid`'s VmRSS meanwhile.
async function load(base, pid, ds, conc, keepAlive) {
  const url = new URL("/webhooks/github", base);
  const agent = new http.Agent({ keepAlive, maxSockets: conc });
  const results = new Array(ds.length);
  let peak = 0;
  const sample = () => {
    const { rss } = procStatus(pid);
    if (rss > peak) peak = rss;
  };
  const sampler = setInterval(sample, 10);
  const send = (d) =>
    new Promise((resolve) => {
      const t0 = process.hrtime.bigint();
      const done = (status, body, error) =>
        resolve({ status, body, error, ms: Number(process.hrtime.bigint() - t0) / 1e6 });
      const req = http.request(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: "POST",
          agent,
          headers: { ...d.headers, "content-length": String(d.body.length) },
        },
        (res) => {
          const chunks = [];
          res.on("data", (c) => chunks.push(c));
          res.on("end", () => done(res.statusCode, Buffer.concat(chunks).toString()));
          res.on("error", (e) => done(0, "", String(e)));
        },
      );
      req.setTimeout(30_000, () => req.destroy(new Error("no answer in 30 s")));
      req.on("error", (e) => done(0, "", String(e)));
      req.end(d.body);
    });
  let next = 0;
  const t0 = process.hrtime.bigint();
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= ds.length) return;
      results[i] = await send(ds[i]);
    }
  };
  await Promise.all(Array.from({ length: conc }, worker));
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  clearInterval(sampler);
  sample();
  agent.destroy();
  return { results, wallMs, peakKb: peak };
}

function pct(sorted, p) {
  if (!sorted.length) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

function stats(ms) {
  const s = [...ms].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / (s.length || 1);
  return { n: s.length, p50: pct(s, 50), p99: pct(s, 99), mean, max: s[s.length - 1] };
}

const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : "n/a");
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : "n/a");
const mib = (kb) => kb / 1024;
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : "n/a");
const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);

async function run(a) {
  const n = Number(a.deliveries);
  const conc = Number(a.concurrency);
  const rounds = Number(a.rounds);
  const keepAlive = a.keepalive !== "0";
  const fw = { name: "formwork", base: a.formwork, pid: Number(a["formwork-pid"]) };
  const peer = { name: "peer", base: a.peer, pid: Number(a["peer-pid"]) };
  if (!(n >= 10 && conc >= 1 && rounds >= 1)) die(2, "bad --deliveries, --concurrency or --rounds");

  const ds = makeDeliveries({
    indexJson: a.examples,
    n,
    secret: a.secret,
    wrongSecret: `${a.secret}-but-not-quite`,
    gap: Math.min(2 * conc, Math.floor(n / 5)),
  });
  const sent = tally(ds);
  const peerVersion = JSON.parse(
    readFileSync(new URL("./node_modules/@octokit/webhooks/package.json", import.meta.url), "utf8"),
  ).version;

  const load0 = loadavg();
  console.log(
    `bench-serve: ${n} signed webhook deliveries to each server, ${conc} in flight, in ${rounds} rounds ` +
      `(formwork and the peer alternate, ABBA), HTTP keep-alive ${keepAlive ? "on" : "off"}, loopback only`,
  );
  console.log(
    `sent: ${sent.good} unique good (${sent.goodBy.comment} issue_comment created on a pull request, not a command; ` +
      `${sent.goodBy.ping} ping; ${sent.goodBy.push} push to a non-default branch) + ${sent.dup} duplicates ` +
      `(an earlier delivery id and body again: ${sent.dupBy.comment} issue_comment, ${sent.dupBy.ping} ping, ${sent.dupBy.push} push) ` +
      `+ ${sent.bad} bad signatures (${sent.badBy.comment}/${sent.badBy.ping}/${sent.badBy.push})`,
  );
  console.log(
    `payloads: GitHub's examples (@octokit/webhooks-examples), edited; ${Math.min(...ds.map((d) => d.body.length))}-` +
      `${Math.max(...ds.map((d) => d.body.length))} bytes`,
  );
  console.log(`machine: ${cpus().length} CPUs; load average before: ${load0.map(f2).join(" ")}`);

  // Idle: after start-up (and, for the agent, its first reconciliation), before any load.
  for (const s of [fw, peer]) {
    s.idleKb = procStatus(s.pid).rss;
    if (!Number.isFinite(s.idleKb)) die(2, `no /proc/${s.pid}/status for ${s.name}`);
    s.hwmReset = resetPeak(s.pid);
    s.results = new Array(n);
    s.peakKb = 0;
    s.wallMs = 0;
  }
  const before = await metrics(fw.base);
  const cpu0 = { fw: cpuOf(fw.pid), peer: cpuOf(peer.pid), me: cpuOf(process.pid), machine: machineCpu() };

  const per = Math.ceil(n / rounds);
  for (let r = 0; r < rounds; r++) {
    const slice = ds.slice(r * per, Math.min(n, (r + 1) * per));
    if (!slice.length) break;
    const order = r % 2 === 0 ? [fw, peer] : [peer, fw];
    for (const s of order) {
      const out = await load(s.base, s.pid, slice, conc, keepAlive);
      out.results.forEach((x, i) => (s.results[slice[i].seq] = x));
      s.peakKb = Math.max(s.peakKb, out.peakKb);
      s.wallMs += out.wallMs;
      await sleep(250);
    }
  }
  const load1 = loadavg();
  const cpu1 = { fw: cpuOf(fw.pid), peer: cpuOf(peer.pid), me: cpuOf(process.pid), machine: machineCpu() };
  fw.cpu = cpu1.fw - cpu0.fw;
  peer.cpu = cpu1.peer - cpu0.peer;
  const genCpu = cpu1.me - cpu0.me;
  const busy = cpu1.machine[0] - cpu0.machine[0];
  const capacity = cpu1.machine[1] - cpu0.machine[1];
  const others = busy - fw.cpu - peer.cpu - genCpu;
  for (const s of [fw, peer]) s.hwmKb = procStatus(s.pid).hwm;

  // The agent's queue drains; then its counters are read (and read again a little later, so
  // that a late double-queue would show).
  const expectAccepted = sent.goodBy.comment;
  const drainStart = Date.now();
  let after;
  for (;;) {
    after = await metrics(fw.base);
    const idle = after.formwork_queue_depth === 0 && after.formwork_jobs_running === 0;
    const ran = runsOf(after, "command") - runsOf(before, "command");
    if ((idle && ran >= expectAccepted) || Date.now() - drainStart > 60_000) break;
    await sleep(100);
  }
  const drainMs = Date.now() - drainStart;
  await sleep(1000);
  after = await metrics(fw.base);
  const peerStats = JSON.parse((await get(`${peer.base}/stats`)).body || "{}");

  // ---- checks ----
  const problems = [];
  const lines = [];
  const check = (what, got, want) => {
    const ok = got === want;
    lines.push(`  ${ok ? "ok  " : "FAIL"} ${pad(what, 58)} ${lpad(got, 6)}  (expected ${want})`);
    if (!ok) problems.push(`${what}: ${got}, expected ${want}`);
  };

  // formwork, response by response: one first answer per id, the rest duplicates.
  const fwCodes = { accepted: 0, acknowledged: 0, duplicate: 0, unauthorized: 0, other: 0, queued: 0 };
  const firstById = new Map();
  const odd = [];
  for (const d of ds) {
    const x = fw.results[d.seq];
    let body = {};
    try {
      body = JSON.parse(x.body);
    } catch {}
    if (x.status === 202 && typeof body.queued === "number") {
      fwCodes[body.queued > 0 ? "accepted" : "acknowledged"]++;
      fwCodes.queued += body.queued;
      firstById.set(d.id, (firstById.get(d.id) ?? 0) + 1);
    } else if (x.status === 200 && body.duplicate === true) fwCodes.duplicate++;
    else if (x.status === 401) fwCodes.unauthorized++;
    else {
      fwCodes.other++;
      if (odd.length < 5) odd.push(`#${d.seq} ${d.event} ${d.cls}: ${x.status} ${x.error ?? x.body.slice(0, 200)}`);
    }
  }
  const uniqueIds = new Set(ds.filter((d) => d.cls !== "bad").map((d) => d.id));
  const idsOnce = [...uniqueIds].filter((id) => firstById.get(id) === 1).length;

  lines.push(`formwork serve: what it answered and counted (against what was sent)`);
  check("HTTP 202, queued 1 (issue_comment, first time)", fwCodes.accepted, sent.goodBy.comment);
  check("HTTP 202, queued 0 (ping, push to a branch, first time)", fwCodes.acknowledged, sent.goodBy.ping + sent.goodBy.push);
  check('HTTP 200 {"duplicate":true}', fwCodes.duplicate, sent.dup);
  check("HTTP 401 (bad signature)", fwCodes.unauthorized, sent.bad);
  check("any other answer, or none", fwCodes.other, 0);
  check("delivery ids answered 202 exactly once", idsOnce, uniqueIds.size);
  check("jobs queued, by the 202 answers", fwCodes.queued, sent.goodBy.comment);
  const d = (outcome) => delivered(after, outcome) - delivered(before, outcome);
  check('deliveries_total{outcome="accepted"}', d("accepted"), sent.goodBy.comment);
  check('deliveries_total{outcome="ignored"}', d("ignored"), sent.goodBy.ping + sent.goodBy.push);
  check('deliveries_total{outcome="duplicate"}', d("duplicate"), sent.dup);
  check('deliveries_total{outcome="bad_signature"}', d("bad_signature"), sent.bad);
  check('deliveries_total{outcome="bad"}', d("bad"), 0);
  const runs = (kind, outcome) => runsOf(after, kind, outcome) - runsOf(before, kind, outcome);
  check('runs_total{kind="command"} (each accepted comment once)', runs("command"), sent.goodBy.comment);
  check('runs_total{kind="command",outcome="error"}', runs("command", "error"), 0);
  check('runs_total{kind="plan"|"close"|"reconcile"|"apply"}', runs("plan") + runs("close") + runs("reconcile") + runs("apply"), 0);
  check("formwork_queue_depth after the drain", after.formwork_queue_depth, 0);
  check("formwork_jobs_running after the drain", after.formwork_jobs_running, 0);
  lines.push(`  (the queue drained ${drainMs} ms after the last response)`);
  if (odd.length) lines.push(`  odd answers: ${odd.join("; ")}`);

  // The peer: no deduplication, so a duplicate is received again.
  const pc = { ok: 0, bad: 0, other: 0 };
  for (const d of ds) {
    const x = peer.results[d.seq];
    if (x.status === 200) pc.ok++;
    else if (x.status === 400 && d.cls === "bad") pc.bad++;
    else pc.other++;
  }
  const rec = peerStats.received ?? {};
  lines.push(`peer (@octokit/webhooks ${peerVersion}): what it answered and counted`);
  check("HTTP 200 (good deliveries and duplicates)", pc.ok, sent.good + sent.dup);
  check("HTTP 400 (bad signature: the library's code)", pc.bad, sent.bad);
  check("any other answer, or none", pc.other, 0);
  for (const [event, kind] of [["issue_comment", "comment"], ["ping", "ping"], ["push", "push"]]) {
    check(`handler called for ${event}`, rec[event] ?? 0, sent.goodBy[kind] + sent.dupBy[kind]);
  }
  check("error handler called (bad signatures)", peerStats.errors ?? 0, sent.bad);

  // ---- numbers ----
  for (const s of [fw, peer]) {
    s.lat = stats(s.results.map((x) => x.ms));
    s.loadKb = Math.max(s.peakKb, s.hwmReset ? s.hwmKb : 0);
    s.byClass = {};
    for (const [label, pick] of [
      ["issue_comment, first", (d) => d.cls === "good" && d.kind === "comment"],
      ["ping/push, first", (d) => d.cls === "good" && d.kind !== "comment"],
      ["duplicate", (d) => d.cls === "dup"],
      ["bad signature", (d) => d.cls === "bad"],
    ]) {
      s.byClass[label] = stats(ds.filter(pick).map((d) => s.results[d.seq].ms));
    }
  }
  const row = (label, a, b, fmt) => `  ${pad(label, 40)} ${lpad(fmt(a), 9)} ${lpad(fmt(b), 9)} ${lpad(ratio(a, b), 9)}`;
  const table = [
    `  ${pad("", 40)} ${lpad("formwork", 9)} ${lpad("peer", 9)} ${lpad("fw/peer", 9)}`,
    row("ingest latency p50 (ms)", fw.lat.p50, peer.lat.p50, f2),
    row("ingest latency p99 (ms)", fw.lat.p99, peer.lat.p99, f2),
    row("ingest latency mean (ms)", fw.lat.mean, peer.lat.mean, f2),
    row("ingest latency max (ms)", fw.lat.max, peer.lat.max, f2),
    row("throughput (deliveries/s, under load)", (n / fw.wallMs) * 1000, (n / peer.wallMs) * 1000, (x) => x.toFixed(0)),
    row("CPU time for the deliveries (ms)", fw.cpu * 1000, peer.cpu * 1000, (x) => x.toFixed(0)),
    row("RSS idle (MiB)", mib(fw.idleKb), mib(peer.idleKb), f1),
    row("RSS under load, peak (MiB)", mib(fw.loadKb), mib(peer.loadKb), f1),
  ];
  const byClass = Object.keys(fw.byClass).map(
    (label) =>
      `  ${pad(`${label} (${fw.byClass[label].n})`, 40)} ${lpad(`${f2(fw.byClass[label].p50)}/${f2(fw.byClass[label].p99)}`, 13)} ` +
      `${lpad(`${f2(peer.byClass[label].p50)}/${f2(peer.byClass[label].p99)}`, 13)}`,
  );

  console.log("");
  console.log(lines.join("\n"));
  console.log("");
  console.log(`results (ratios: formwork / peer; below 1x means formwork is faster or smaller, but for throughput)`);
  console.log(table.join("\n"));
  console.log(`  p50/p99 (ms) by kind of delivery      ${lpad("formwork", 13)} ${lpad("peer", 13)}`);
  console.log(byClass.join("\n"));
  console.log(
    `  RSS under load: the larger of VmRSS sampled every 10 ms during the load and VmHWM since ` +
      `${fw.hwmReset && peer.hwmReset ? "its reset (clear_refs) after the idle reading" : "start-up (clear_refs refused)"}; ` +
      `formwork ${f1(mib(fw.peakKb))}/${f1(mib(fw.hwmKb))}, peer ${f1(mib(peer.peakKb))}/${f1(mib(peer.hwmKb))} MiB sampled/VmHWM`,
  );
  console.log(
    `  the peer does less work than formwork: @octokit/webhooks verifies, parses and hands each delivery to ` +
      `its handlers, but keeps no delivery ids (a duplicate is received again) and queues nothing; formwork ` +
      `also deduplicates (in memory and a lease row in its SQLite state store per delivery id), turns each ` +
      `delivery into jobs and queues and runs them`,
  );
  const othersShare = others / capacity;
  console.log(
    `machine: load average after: ${load1.map(f2).join(" ")}; during the load (${f2(capacity / cpus().length)} s): ` +
      `CPU busy ${f2(busy)} of ${f2(capacity)} CPU-s: formwork ${f2(fw.cpu)}, peer ${f2(peer.cpu)}, this load generator ` +
      `${f2(genCpu)}, other processes ${f2(Math.max(0, others))} (${f1(Math.max(0, othersShare) * 100)} %; CPU times in 10 ms ticks)` +
      (othersShare > 0.1
        ? `\n  busy: other processes used these ${cpus().length} CPUs during the load; absolute numbers carry their noise, the alternating rounds put it on both servers alike`
        : load0[0] >= cpus().length
          ? `\n  the load averages count the minutes before the load too (such as a build just before it); during the load itself other processes used little CPU`
          : ""),
  );

  console.log("");
  console.log("targets (formwork):");
  const idleMib = mib(fw.idleKb);
  console.log(
    `  idle RSS under ${TARGET_IDLE_RSS_MIB} MiB: ${f1(idleMib)} MiB ${idleMib < TARGET_IDLE_RSS_MIB ? "PASS" : "MISS"}`,
  );
  console.log(
    `  p99 ingest under ${TARGET_P99_MS} ms: ${f2(fw.lat.p99)} ms ${fw.lat.p99 < TARGET_P99_MS ? "PASS" : "MISS"}`,
  );

  if (a.out) {
    mkdirSync(a.out, { recursive: true });
    const rows = ds.map((d) =>
      [d.seq, d.id, d.event, d.cls, fw.results[d.seq].status, f2(fw.results[d.seq].ms), peer.results[d.seq].status, f2(peer.results[d.seq].ms)].join("\t"),
    );
    writeFileSync(`${a.out}/latencies.tsv`, `seq\tid\tevent\tclass\tformwork_status\tformwork_ms\tpeer_status\tpeer_ms\n${rows.join("\n")}\n`);
  }

  console.log("");
  if (problems.length) {
    console.log(`correctness: FAILED (${problems.length}): ${problems.join("; ")}`);
    process.exit(1);
  }
  console.log("correctness: ok (nothing lost, nothing double-queued; the peer received every delivery)");
}

const [cmd, ...rest] = process.argv.slice(2);
if (cmd === "wait") {
  const [url, t] = rest;
  await waitUntil(`${url} to answer 200`, Number(t), async () => (await get(url, 1000)).status === 200);
} else if (cmd === "wait-settled") {
  const [base, t] = rest;
  let calm = 0;
  await waitUntil("the agent's first reconciliation to finish", Number(t), async () => {
    const r = await get(`${base}/metrics`, 1000);
    if (r.status !== 200) return false;
    const m = parseMetrics(r.body);
    const ok = runsOf(m, "reconcile") >= 1 && m.formwork_queue_depth === 0 && m.formwork_jobs_running === 0;
    calm = ok ? calm + 1 : 0;
    return calm >= 5;
  });
} else if (cmd === "run") {
  try {
    await run(args(rest));
  } catch (e) {
    die(2, `the run could not go on: ${e?.stack ?? e}`);
  }
} else {
  die(2, "usage: bench.mjs wait|wait-settled|run ...");
}
