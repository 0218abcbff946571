"""The body of scripts/bench-apply, after the build and the setups: `formwork apply` of the 18-stack
PlaceOS pipeline from nothing, against Sceptre 4.7.0's `sceptre launch` of the same stacks, each
on a fresh moto server whose stack operations take a fixed time (tools/bench/delay_proxy.py).
Run by scripts/bench-apply with .venv/sceptre/bin/python (PyYAML, boto3); see that script's
header for what it measures.

    apply.py --root DIR --formwork BIN --moto-python PY --sceptre BIN --scratch DIR
             [--reps N] [--delay SECONDS] [--plan-apply 0|1] [--change-set-delay SECONDS]
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fixture  # noqa: E402
from run import GIT, aws_env  # noqa: E402  (scripts/bench-plan's runner)

HERE = Path(__file__).resolve().parent
ENV = "staging"
TARGET = 1.2  # formwork's wall time / critical-path bound


def say(msg=""):
    print(msg, flush=True)


def die(msg):
    say(f"bench-apply: {msg}")
    sys.exit(1)


def quietly(f, *args):
    with open(os.devnull, "w") as null:
        stdout, sys.stdout = sys.stdout, null
        try:
            return f(*args)
        finally:
            sys.stdout = stdout


def git(repo, *args, capture=False):
    p = subprocess.run(GIT + list(args), cwd=repo, check=True, text=True,
                       capture_output=True)
    return p.stdout.strip() if capture else None


# ------------------------------------------------------------------------------------------------
# The scene: one moto server and its delay proxy per measured run
# ------------------------------------------------------------------------------------------------


SCENES = []


class Scene:
    """A fresh moto server (tools/bench/moto_apply.py: change-set-created stacks get outputs)
    behind tools/bench/delay_proxy.py, both leading process groups of their own."""

    def __init__(self, a, scratch):
        self.scratch = scratch
        self.moto = self.proxy = None
        SCENES.append(self)  # stopped at the runner's end, whatever happens
        scratch.mkdir(parents=True, exist_ok=True)
        probe = str(a.root / "tools" / "emulators" / "probe.py")
        port = subprocess.run([a.moto_python, probe, "freeport"], check=True,
                              capture_output=True, text=True).stdout.strip()
        self.moto = subprocess.Popen(
            [a.moto_python, str(HERE / "moto_apply.py"), "-H", "127.0.0.1", "-p", port],
            stdin=subprocess.DEVNULL, stdout=open(scratch / "moto.log", "w"),
            stderr=subprocess.STDOUT, start_new_session=True)
        self.moto_url = f"http://127.0.0.1:{port}"
        if subprocess.run([a.moto_python, probe, "wait", "moto", self.moto_url,
                           str(self.moto.pid), "60"]).returncode != 0:
            self.stop()
            die("moto did not start: " + (scratch / "moto.log").read_text()[-2000:])
        port_file = scratch / "proxy.port"
        self.log = scratch / "proxy.log"
        self.proxy = subprocess.Popen(
            [sys.executable, str(HERE / "delay_proxy.py"), self.moto_url, str(port_file),
             str(self.log), str(a.delay), str(a.change_set_delay)], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=open(scratch / "proxy.err", "w"),
            start_new_session=True)
        for _ in range(200):
            if port_file.exists():
                break
            if self.proxy.poll() is not None:
                self.stop()
                die("the delay proxy did not start: " + (scratch / "proxy.err").read_text())
            time.sleep(0.05)
        else:
            self.stop()
            die("the delay proxy did not start within 10 s")
        self.url = f"http://127.0.0.1:{port_file.read_text().strip()}"

    def stop(self):
        for p in (self.proxy, self.moto):
            if p is None or p.poll() is not None:
                continue
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()


# ------------------------------------------------------------------------------------------------
# The config repository: the pipeline, then environment `staging` made anew for each moto
# ------------------------------------------------------------------------------------------------


def make_repo(a, scratch):
    """The formwork config repository (git): a first commit with the pipeline alone (the
    `--base` of plan+apply), the staging environment written and committed per run."""
    repo = scratch / "repo"
    unsupported = subprocess.run(
        [a.moto_python, str(HERE / "moto_types.py"), str(a.root / "pipelines" / "placeos")],
        check=True, capture_output=True, text=True).stdout.split()
    say("the benchmark's copy of the templates, changed so that moto can create the stacks "
        "(tools/bench/fixture.py, as scripts/bench-plan):")
    fixture.make_config(a.root, repo, set(unsupported))
    env_file = repo / "environments" / ENV / "environment.yml"
    env_text = env_file.read_text()
    shutil.rmtree(repo / "environments")
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "PlaceOS pipeline")
    base = git(repo, "rev-parse", "HEAD", capture=True)
    return repo, env_file, env_text, base


def new_environment(scene, repo, env_file, env_text, tag, loud):
    """environments/staging for this moto: its ACM certificate, its SSM SecureString; committed."""
    env_file.parent.mkdir(parents=True, exist_ok=True)
    env_file.write_text(env_text)
    if loud:
        say("configuration values changed for moto (every run: a fresh moto server):")
        fixture.request_certificates(scene.moto_url, repo)
        say("SSM SecureStrings put into moto:")
        fixture.put_ssm(scene.moto_url, repo)
    else:
        quietly(fixture.request_certificates, scene.moto_url, repo)
        quietly(fixture.put_ssm, scene.moto_url, repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", f"{ENV}: certificate of moto for {tag}")


# ------------------------------------------------------------------------------------------------
# The measured commands
# ------------------------------------------------------------------------------------------------


def timed(cmd, cwd, env, out, err):
    with open(out, "w") as o, open(err, "w") as e:
        t0 = time.time()
        start = time.perf_counter()
        code = subprocess.run(cmd, cwd=cwd, env=env, stdout=o, stderr=e).returncode
        secs = time.perf_counter() - start
    return {"t0": t0, "t1": t0 + secs, "secs": secs, "code": code, "out": out, "err": err}


def formwork_run(a, scene, repo, base, mode, tag):
    """mode "apply": `formwork plan` (untimed, recorded), then `formwork apply` (timed);
    mode "plan+apply": `formwork apply --base BASE --head HEAD` (timed)."""
    d = scene.scratch
    env = aws_env(scene.url)
    data = d / "formwork-data"
    common = ["--env", ENV, "--output", "json", "--data-dir", str(data)]
    if mode == "apply":
        with open(d / "plan.json", "w") as o, open(d / "plan.err", "w") as e:
            t = time.perf_counter()
            code = subprocess.run([a.formwork, "plan", *common], cwd=repo, env=env, stdout=o,
                                  stderr=e).returncode
            plan_secs = time.perf_counter() - t
        if code != 2:
            die(f"formwork plan ({tag}) exited with {code} (2 expected: changes planned):\n"
                + (d / "plan.err").read_text()[-3000:])
        r = timed([a.formwork, "apply", *common], repo, env, d / "apply.json", d / "apply.err")
        r["plan_secs"] = plan_secs
    else:
        r = timed([a.formwork, "apply", *common, "--base", base, "--head", "HEAD"], repo, env,
                  d / "apply.json", d / "apply.err")
    r["tool"] = "formwork" if mode == "apply" else "formwork-pa"
    return r


def sceptre_run(a, scene, repo, tag):
    projects = scene.scratch / "sceptre"
    fixture.make_sceptre(repo, projects)
    r = timed([a.sceptre, "launch", "-y", ""], projects / ENV, aws_env(scene.url),
              scene.scratch / "launch.txt", scene.scratch / "launch.err")
    r["tool"] = "sceptre"
    return r


# ------------------------------------------------------------------------------------------------
# Checks: the work was done
# ------------------------------------------------------------------------------------------------


def check(scene, repo, r, names):
    """What is wrong with a run, as a list of lines (empty when it created the 18 stacks)."""
    problems = []
    if r["code"] != 0:
        tail = Path(r["err"]).read_text()[-1500:] + Path(r["out"]).read_text()[-1500:]
        problems.append(f"exit code {r['code']}: {tail}")
    if r["tool"].startswith("formwork"):
        try:
            report = json.loads(Path(r["out"]).read_text())
            units = report.get("units", [])
            applied = [u for u in units if u.get("state") == "applied"]
            if report.get("run", {}).get("status") != "succeeded" or len(applied) != len(names):
                problems.append(f"formwork reports run {report.get('run', {}).get('status')}, "
                                f"{len(applied)} of {len(units)} stacks applied")
        except ValueError:
            problems.append("no JSON report on standard output")
    cfn = fixture.client("cloudformation", scene.moto_url)
    seen = Counter()
    status = {}
    for page in cfn.get_paginator("list_stacks").paginate():
        for s in page["StackSummaries"]:
            if s["StackStatus"] != "DELETE_COMPLETE":
                seen[s["StackName"]] += 1
                status[s["StackName"]] = s["StackStatus"]
    missing = sorted(set(names) - set(seen))
    if missing:
        problems.append(f"stacks missing: {', '.join(missing)}")
    dup = sorted(n for n, k in seen.items() if k > 1)
    if dup:
        problems.append(f"stacks made twice in moto: {', '.join(dup)}")
    bad = sorted(f"{n} {s}" for n, s in status.items() if s != "CREATE_COMPLETE")
    if bad:
        problems.append(f"not CREATE_COMPLETE: {', '.join(bad)}")
    if quietly(fixture.check_stacks, scene.moto_url, repo):
        problems.append("fixture.py stacks: some stack lacks an output another stack reads")
    return problems


# ------------------------------------------------------------------------------------------------
# Timelines from the proxy's log
# ------------------------------------------------------------------------------------------------


def timeline(r, log, names, preds):
    """Per stack: start (its operation reached the proxy), ready (the proxy let it finish), seen
    (the tool's first DescribeStacks showing it complete), polls (DescribeStacks of it while
    held); the chain of stacks that made the wall time; all relative to the command's start."""
    t0 = r["t0"]
    st = {n: {"polls": 0, "seen": None, "start": None, "ready": None, "calls": [], "op_ms": 0.0}
          for n in names}
    for line in Path(log).read_text().splitlines():
        e = json.loads(line)
        if e["t"] < t0:
            continue
        s = st.get(e.get("stack"))
        if s is None:
            continue
        t = e["t"] - t0
        if e.get("event") == "start":
            s["start"], s["ready"] = t, e["ready"] - t0
            continue
        if e["op"] in ("CloudFormation.ExecuteChangeSet", "CloudFormation.CreateStack") \
                and s["start"] is not None and abs(t - s["start"]) < 1e-3:
            s["op_ms"] = e["ms"]
        s["calls"].append((t, e["op"].split(".", 1)[1], e["ms"]))
        if e["op"] == "CloudFormation.DescribeStacks" and s["ready"] is not None:
            if e.get("held"):
                s["polls"] += 1
            elif s["seen"] is None and e.get("shown") == "CREATE_COMPLETE" and t >= s["ready"]:
                s["seen"] = t + e["ms"] / 1000
    if any(s["start"] is None or s["seen"] is None for s in st.values()):
        return None
    # The chain: from the stack seen complete last, back through the predecessor seen complete
    # last before it started.
    end = max(names, key=lambda n: st[n]["seen"])
    chain = [end]
    while True:
        cur = chain[-1]
        before = [p for p in preds(cur) if st[p]["seen"] <= st[cur]["start"] + 1e-6]
        if not before:
            break
        chain.append(max(before, key=lambda p: st[p]["seen"]))
    chain.reverse()
    return {"stacks": st, "chain": chain, "secs": r["secs"]}


def breakdown(tl, delay):
    """Where the wall time of a run went, along its chain: startup (command start to the first
    operation), per chain stack the operation (= delay), detection (ready to seen), gap (seen to
    the next chain stack's operation), tail (last seen to exit)."""
    st, chain = tl["stacks"], tl["chain"]
    first = st[chain[0]]
    out = {"startup": first["start"], "ops": 0.0, "detect": 0.0, "gap": 0.0,
           "tail": tl["secs"] - st[chain[-1]]["seen"], "rows": []}
    for i, n in enumerate(chain):
        s = st[n]
        op = s["ready"] - s["start"]
        detect = s["seen"] - s["ready"]
        gap = st[chain[i + 1]]["start"] - s["seen"] if i + 1 < len(chain) else None
        out["ops"] += op
        out["detect"] += detect
        out["gap"] += gap or 0.0
        out["rows"].append((n, s["start"], s["ready"], s["seen"], detect, s["polls"], gap))
    return out


def dependant_gaps(tl, deps):
    """For every stack with dependencies: from the last of them seen complete to its own
    operation, and the calls naming it in that time."""
    st = tl["stacks"]
    out = []
    for n, ds in deps.items():
        if not ds:
            continue
        released = max(st[d]["seen"] for d in ds)
        calls = [c for c in st[n]["calls"] if released <= c[0] < st[n]["start"]]
        out.append((n, st[n]["start"] - released, calls))
    return out


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------


def fmt(x):
    return f"{x:.2f} s" if x < 10 else f"{x:.1f} s"


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def longest_chain(deps):
    memo = {}

    def best(n):
        if n not in memo:
            memo[n] = max((best(d) for d in deps[n]), key=len, default=[]) + [n]
        return memo[n]

    return max((best(n) for n in deps), key=len)


def formwork_polls(limit):
    """When formwork reads a stack's status after starting its operation, in seconds, ignoring
    the time of the reads themselves: src/apply/wait.rs reads at once, then sleeps 250 ms,
    growing x1.5 per read up to 10 s."""
    out, t, interval = [0.0], 0.0, 0.25
    while t < limit:
        t += interval
        out.append(t)
        interval = min(interval * 1.5, 10.0)
    return out


def seen_formwork(d):
    return next(t for t in formwork_polls(d + 20) if t > d)


def seen_sceptre(d):
    """Sceptre 4.7.0 (StackActions._wait_for_completion): reads the status, sleeps 4 s, and
    again, until the status read is complete; then it still sleeps its 4 s before returning."""
    k = 0
    while 4 * k <= d:
        k += 1
    return 4.0 * k, 4.0 * k + 4


def schedule_table(delays):
    say("poll schedules, from the code (ignoring the time of the calls): the first status read "
        "after a stack operation of D seconds is done, and when the tool can start dependants")
    say(f"  {'D':>6}  {'formwork: read done at':>24}{'over D':>9}  {'sceptre: read done at':>23}"
        f"{'returns at':>12}{'over D':>9}")
    for d in delays:
        f = seen_formwork(d)
        s, ret = seen_sceptre(d)
        say(f"  {d:>5g}s  {f:>23.2f}s{(f - d) / d:>8.0%}  {s:>22.2f}s{ret:>11.2f}s"
            f"{(ret - d) / d:>8.0%}")
    say("  formwork reads at " + ", ".join(f"{t:.2f}" for t in formwork_polls(60)[:14])
        + " … s (then every 10 s)")


class Sampler(threading.Thread):
    """Every few seconds during the timed runs: the CPU used by processes that are not this
    benchmark's (not descendants of this process), from `top`'s second, 1-second sample."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop_event = threading.Event()
        self.samples = []  # {command: %CPU} of other processes, per sample

    def ours(self):
        parent = {}
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    stat = (d / "stat").read_text()
                    parent[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    pass
        mine, todo = {os.getpid()}, [os.getpid()]
        while todo:
            p = todo.pop()
            for c, pp in parent.items():
                if pp == p and c not in mine:
                    mine.add(c)
                    todo.append(c)
        return mine

    def run(self):
        while not self.stop_event.wait(4):
            try:
                out = subprocess.run(
                    ["top", "-b", "-w", "200", "-n", "2", "-d", "1", "-o", "%CPU"],
                    capture_output=True, text=True, timeout=10).stdout
            except (OSError, subprocess.SubprocessError):
                return
            mine = self.ours()
            other = Counter()
            lines = out.split("\ntop - ")[-1].splitlines()
            header = next((i for i, line in enumerate(lines) if line.lstrip().startswith("PID")),
                          None)
            if header is None:
                continue
            for line in lines[header + 1:]:
                f = line.split()
                if len(f) >= 12 and f[0].isdigit() and int(f[0]) not in mine:
                    cpu = float(f[8].replace(",", "."))
                    if cpu > 0:
                        other[f[11]] += cpu
            self.samples.append(other)

    def stop(self):
        self.stop_event.set()


def busy_note(sampler, cores):
    """A line on what else the machine did during the timed runs; BUSY when other processes
    took half a core or more on average."""
    if not sampler.samples:
        return "(no CPU samples of other processes)"
    n = len(sampler.samples)
    total = sum(sum(s.values()) for s in sampler.samples) / n
    per = Counter()
    for s in sampler.samples:
        per.update(s)
    top = ", ".join(f"{c} {v / n:.0f}%" for c, v in per.most_common(4) if v / n >= 1)
    busy = total >= 50
    return ((f"the machine was BUSY: other processes used {total:.0f}% CPU on average "
             f"(of {cores * 100}%) during the timed runs, so timings are noisy" if busy else
             f"other processes used {total:.0f}% CPU on average (of {cores * 100}%) during the "
             "timed runs") + (f"; busiest: {top}" if top else "") + f" ({n} samples of top)")


def report(a, deps, results, timelines, problems, load, names, sampler):
    D = a.delay
    chain = longest_chain(deps)
    bound = D * len(chain)
    cores = os.cpu_count()
    say()
    say("=" * 98)
    say(f"formwork apply vs Sceptre 4.7.0 (sceptre launch): PlaceOS, environment {ENV}, "
        f"{len(names)} stacks created from nothing")
    say(f"endpoint: moto 5.2.5 (tools/bench/moto_apply.py: change-set-created stacks get their "
        f"outputs) behind tools/bench/delay_proxy.py: every stack operation takes "
        f"D = {D:g} s; a fresh moto server for every run")
    if a.change_set_delay:
        say(f"change sets take {a.change_set_delay:g} s to be made (BENCH_CHANGESET_DELAY: "
            "DescribeChangeSet reads CREATE_IN_PROGRESS that long); formwork makes one per stack "
            "during an apply from nothing, Sceptre's CreateStack none; the bound counts stack "
            "operations only")
    else:
        say("change sets are made as fast as moto makes them (BENCH_CHANGESET_DELAY=0): on AWS "
            "they take seconds, and formwork makes one for each stack but the first during an "
            "apply from nothing")
    say(f"{a.reps} timed runs of each command, interleaved (load average {load[0]:.2f} before, "
        f"{load[1]:.2f} after; {cores} cores)")
    say(busy_note(sampler, cores))
    say("=" * 98)
    say()
    say(f"critical-path bound: the longest dependency chain has {len(chain)} stacks, each one "
        f"operation of D = {D:g} s: {len(chain)} x {D:g} s = {fmt(bound)}")
    say("  " + " -> ".join(chain))
    say()
    say(f"{'wall time':<58}{'median':>9}{'min':>9}{'max':>9}{'/ bound':>10}")
    rows = [("formwork", "formwork apply (the recorded plan)"),
            ("formwork-pa", "formwork apply --base --head (plans, then applies)"),
            ("sceptre", "sceptre launch -y (its own plan + deploy)")]
    med_ratio = {}
    for key, label in rows:
        xs = [r["secs"] for r in results[key]]
        if not xs:
            continue
        m = med(xs)
        med_ratio[key] = m / bound
        say(f"  {label:<56}{fmt(m):>9}{fmt(min(xs)):>9}{fmt(max(xs)):>9}{m / bound:>9.2f}x")
    if results["formwork"]:
        say(f"  (formwork plan before each apply, untimed: median "
            f"{fmt(med([r['plan_secs'] for r in results['formwork']]))})")
    say()
    for key, label in rows:
        tls = [t for t in timelines[key] if t]
        if not tls:
            continue
        bds = [breakdown(t, D) for t in tls]
        say(f"{label}: where the wall time went, along the chain that set it "
            f"(medians of {len(bds)} runs)")
        parts = [("startup: command start to the first stack operation", "startup"),
                 (f"stack operations on the chain ({len(tls[0]['chain'])} x D)", "ops"),
                 ("finding out a stack is done (D over -> done read)", "detect"),
                 ("done read -> the next chain stack's operation starts", "gap"),
                 ("last stack read done -> command exits", "tail")]
        for text, k in parts:
            say(f"  {text:<58}{fmt(med([b[k] for b in bds])):>9}")
        mid = sorted(range(len(tls)), key=lambda i: tls[i]["secs"])[len(tls) // 2]
        t, b = tls[mid], bds[mid]
        say(f"  the median run ({fmt(t['secs'])}), its chain (seconds from the command's start; "
            "polls: status reads while in progress):")
        say(f"    {'stack':<17}{'op start':>9}{'D ends':>9}{'seen':>9}{'detect':>8}{'polls':>7}"
            f"{'-> next':>9}")
        for n, s0, rd, sn, det, polls, gap in b["rows"]:
            say(f"    {n.removeprefix(ENV + '-'):<17}{s0:>9.2f}{rd:>9.2f}{sn:>9.2f}{det:>8.2f}"
                f"{polls:>7}{'' if gap is None else f'{gap:9.2f}'}")
        all_det = [s["seen"] - s["ready"] for tl in tls for s in tl["stacks"].values()]
        sched = (seen_formwork(D) if key.startswith("formwork") else seen_sceptre(D)[0]) - D
        op_ms = [s["op_ms"] for tl in tls for s in tl["stacks"].values()]
        say(f"  detection = the poll schedule's {sched:.2f} s over D (table below) + the "
            f"operation's own call (moto creates the resources inside it: median "
            f"{med(op_ms):.0f} ms) + the time of the status reads before it (the rest: median "
            f"{med([d - sched - m / 1000 for d, m in zip(all_det, op_ms)]) * 1000:.0f} ms)")
        all_polls = [s["polls"] + 1 for tl in tls for s in tl["stacks"].values()]
        say(f"  every stack of every run: detection median {fmt(med(all_det))}, max "
            f"{fmt(max(all_det))}; status reads per stack median {med(all_polls):g}, max "
            f"{max(all_polls)}")
        if key == "sceptre":
            say("  Sceptre sleeps 4 s between status reads, and 4 s more after the read that "
                "finds the stack done before it returns (StackActions._wait_for_completion); it "
                "launches wave by wave, a wave after every stack of the one before returned")
        if key.startswith("formwork"):
            gaps = [g for tl in tls for g in dependant_gaps(tl, deps)]
            ops = Counter(c[1] for _, _, calls in gaps for c in calls)
            say(f"  a dependant's start after its last dependency was seen done: median "
                f"{fmt(med([g for _, g, _ in gaps]))}, max {fmt(max(g for _, g, _ in gaps))}; "
                f"calls naming the dependant meanwhile, per stack: "
                + ", ".join(f"{op} {k / len(gaps):.1f}" for op, k in ops.most_common()))
        say()
    schedule_table(sorted({D, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0}))
    say()
    say("targets (PASS/MISS; a MISS never fails the benchmark)")
    if "formwork" in med_ratio:
        r = med_ratio["formwork"]
        say(f"  formwork apply / critical-path bound: {r:.2f}  "
            f"[{'PASS' if r <= TARGET else 'MISS'}: at most {TARGET}]")
    if "formwork-pa" in med_ratio:
        r = med_ratio["formwork-pa"]
        say(f"  formwork apply --base --head / bound: {r:.2f}  "
            f"[{'PASS' if r <= TARGET else 'MISS'}: at most {TARGET}] (includes planning)")
    if "sceptre" in med_ratio:
        r = med_ratio["sceptre"]
        say(f"  sceptre launch / bound: {r:.2f}  "
            f"[{'PASS' if r <= TARGET else 'MISS'}: at most {TARGET}] (the peer, for comparison)")
        if "formwork" in med_ratio:
            say(f"  sceptre launch / formwork apply: {r / med_ratio['formwork']:.2f}x")
    say()
    if problems:
        say("PROBLEMS (not every run did the work it was timed on):")
        for p in problems:
            say(f"  - {p}")
    else:
        say(f"checked after every run: exit code 0; all {len(names)} stacks exist once in moto, "
            "CREATE_COMPLETE, with every output another stack reads; formwork reported the run "
            f"succeeded with {len(names)} stacks applied")


# ------------------------------------------------------------------------------------------------


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--formwork", required=True)
    ap.add_argument("--moto-python", required=True)
    ap.add_argument("--sceptre", required=True)
    ap.add_argument("--scratch", type=Path, required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--delay", type=float, default=3.0)
    ap.add_argument("--plan-apply", type=int, default=1)
    ap.add_argument("--change-set-delay", type=float, default=0.0)
    a = ap.parse_args(argv)
    # Stopped by a signal: leave through the `finally` that stops this run's moto and proxy.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    a.scratch.mkdir(parents=True, exist_ok=True)
    say(f"scratch directory: {a.scratch}")
    repo, env_file, env_text, base = make_repo(a, a.scratch)

    # The graph, from formwork itself (the Sceptre projects mirror its dependencies).
    env_file.parent.mkdir(parents=True, exist_ok=True)
    env_file.write_text(env_text)
    g = subprocess.run([a.formwork, "graph", "--env", ENV, "--output", "json"], cwd=repo,
                       capture_output=True, text=True)
    if g.returncode != 0:
        die(f"formwork graph failed: {g.stderr}")
    graph = json.loads(g.stdout)
    deps = {f"{ENV}-{s['stack']}": [f"{ENV}-{d['stack']}" for d in s["depends_on"]]
            for s in graph["stacks"]}
    names = sorted(deps)
    wave_of = {f"{ENV}-{n}": i for i, w in enumerate(graph["waves"]) for n in w}
    say(f"{len(names)} stacks in {len(graph['waves'])} waves (formwork graph); Sceptre launches "
        "the same graph wave by wave")

    def preds(tool):
        if tool == "sceptre":  # batches: a wave starts when the wave before it is done
            return lambda n: [m for m in names if wave_of[m] == wave_of[n] - 1]
        return lambda n: deps[n]

    tools = ["formwork", "sceptre"] + (["formwork-pa"] if a.plan_apply else [])
    results = {t: [] for t in ("formwork", "formwork-pa", "sceptre")}
    timelines = {t: [] for t in results}
    problems = []
    load_before = os.getloadavg()
    sampler = Sampler()
    sampler.start()
    loud = True
    for i in range(a.reps):
        order = tools if i % 2 == 0 else tools[::-1]
        for tool in order:
            tag = f"run{i + 1}-{tool}"
            say(f"timed run {i + 1}/{a.reps}: {tool} ...")
            scene = None
            try:
                scene = Scene(a, a.scratch / tag)
                new_environment(scene, repo, env_file, env_text, tag, loud)
                loud = False
                if tool == "sceptre":
                    r = sceptre_run(a, scene, repo, tag)
                else:
                    r = formwork_run(a, scene, repo, base, "apply" if tool == "formwork"
                                     else "plan+apply", tag)
                found = check(scene, repo, r, names)
            finally:
                if scene:
                    scene.stop()
            problems += [f"{tag}: {p}" for p in found]
            results[tool].append(r)
            tl = timeline(r, scene.log, names, preds(tool))
            if tl is None:
                problems.append(f"{tag}: the proxy's log lacks a start or a completion seen for "
                                "some stack")
            timelines[tool].append(tl)
            say(f"  {fmt(r['secs'])}, exit code {r['code']}"
                + (f"; {len(found)} problems" if found else ""))
    load = (load_before[0], os.getloadavg()[0])
    sampler.stop()
    report(a, deps, results, timelines, problems, load, names, sampler)
    return 0


def main_stopping_scenes(argv):
    try:
        return main(argv)
    finally:
        for scene in SCENES:
            scene.stop()


if __name__ == "__main__":
    sys.exit(main_stopping_scenes(sys.argv[1:]))
