"""The body of scripts/bench-plan, after the build and the setups: `formwork plan` against Sceptre
4.7.0 doing the same work, in the same run, against one moto server. Run by scripts/bench-plan
with .venv/sceptre/bin/python (PyYAML, boto3); see that script's header for what it measures.

    run.py --root DIR --formwork BIN --moto URL --moto-python PY --sceptre BIN --scratch DIR
           [--reps N]
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fixture  # noqa: E402

HERE = Path(__file__).resolve().parent
CHANGED_TEMPLATE = "pipelines/placeos/templates/elasticache.yml"
CHANGE_FROM = "SnapshotRetentionLimit: !If [Replicated, 7, 0]"
CHANGE_TO = "SnapshotRetentionLimit: !If [Replicated, 8, 0]"
CHANGED_STACK = "elasticache"
TARGET_RATIO = 10.0
PASSES = {
    "stock": "moto 5.2.5 as scripts/emulators runs it",
    "list-params": "moto 5.2.5 with DescribeStacks printing List<…> parameters comma-joined, as "
                   "AWS does (tools/bench/moto_list_params.py)",
}
# Calls per unchanged stack: every call of a plan of every stack that does not name a changed
# stack (listings, the account guard, SSM reads included), over the unchanged stacks.
TARGET_UNCHANGED_CALLS = 0.1
THROTTLE_EVERY = 5
GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com",
       "-c", "commit.gpgsign=false"]


def say(msg=""):
    print(msg, flush=True)


def die(msg):
    say(f"bench-plan: {msg}")
    sys.exit(1)


def aws_env(url):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and k not in ("FORMWORK_DATA_DIR",)}
    env.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
               AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    return env


def run(cmd, cwd, env=None, out=None, check=True):
    """Runs cmd with its output to the file `out` (or captured); returns (seconds, exit code)."""
    start = time.perf_counter()
    with open(out or os.devnull, "w") as f:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT
                              if out is None else f)
    secs = time.perf_counter() - start
    if check and proc.returncode != 0:
        tail = Path(out).read_text()[-3000:] if out else ""
        die(f"{' '.join(map(str, cmd))} (in {cwd}) exited with {proc.returncode}\n{tail}")
    return secs, proc.returncode


class Proxy:
    """tools/bench/count_proxy.py in front of moto."""

    def __init__(self, upstream, scratch):
        self.port_file = scratch / "proxy.port"
        self.log = scratch / "proxy.log"
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "count_proxy.py"), upstream, str(self.port_file),
             str(self.log)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(scratch / "proxy.err", "w"), start_new_session=True)
        for _ in range(100):
            if self.port_file.exists():
                break
            if self.proc.poll() is not None:
                die("the counting proxy did not start: " + (scratch / "proxy.err").read_text())
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port_file.read_text().strip()}"

    def reset(self):
        urllib.request.urlopen(urllib.request.Request(self.url + "/__reset", method="POST"))
        self.log.write_text("")

    def keep(self, name):
        """Keeps the log of the requests since the last reset as proxy-NAME.log (with BENCH_KEEP,
        a timeline of each counted run: operation, stack, start, duration)."""
        shutil.copyfile(self.log, self.log.with_name(f"proxy-{name}.log"))

    def counts(self):
        return json.load(urllib.request.urlopen(self.url + "/__counts"))

    def throttle_every(self, n):
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/__throttle?every={n}",
                                                      method="POST"))

    def per_stack(self):
        """{stack name: Counter(op)} of the requests naming a stack; Counter of the others."""
        stacks, other = defaultdict(Counter), Counter()
        for line in self.log.read_text().splitlines():
            r = json.loads(line)
            stack = r["stack"]
            if stack and stack.startswith("arn:"):
                m = re.search(r":stack/([^/]+)/", stack)
                stack = m.group(1) if m else stack
            (stacks[stack] if stack else other)[r["op"]] += 1
        return stacks, other

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


# ------------------------------------------------------------------------------------------------


def setup(a, moto, scratch, env, quiet):
    repo, projects = scratch / "repo", scratch / "sceptre"
    say(f"scratch directory: {scratch}")
    unsupported = subprocess.run(
        [a.moto_python, str(HERE / "moto_types.py"), str(a.root / "pipelines" / "placeos")],
        check=True, capture_output=True, text=True).stdout.split()
    if quiet:  # the same scene as in the first pass
        with open(os.devnull, "w") as null:
            stdout, sys.stdout = sys.stdout, null
            try:
                fixture.make_config(a.root, repo, set(unsupported))
                fixture.request_certificates(moto, repo)
                fixture.put_ssm(moto, repo)
            finally:
                sys.stdout = stdout
        fixture.make_sceptre(repo, projects)
    else:
        say("config repository: pipelines/placeos and environments staging, production, qa (qa "
            "derived from staging), all in account 123456789012, ap-southeast-2")
        say("the benchmark's copy of the templates, changed so that moto can create the stacks:")
        fixture.make_config(a.root, repo, set(unsupported))
        say("configuration values changed for moto:")
        fixture.request_certificates(moto, repo)
        fixture.make_sceptre(repo, projects)
        say("Sceptre projects: one per environment (project_code = environment: stack names "
            "<env>-<stack>), config/<stack>.yaml per stack, templates linked to the repository's")
        say("SSM SecureStrings put into moto:")
        fixture.put_ssm(moto, repo)
    run(["git", "init", "-q", "-b", "main"], repo)
    run(GIT + ["add", "-A"], repo)
    run(GIT + ["commit", "-qm", "PlaceOS: three environments"], repo)
    out = scratch / "validate.txt"
    run([a.formwork, "validate"], repo, env, out)
    say(f"formwork validate: {out.read_text().strip()}")
    return repo, projects


def deploy(a, moto, projects, repo, env, scratch):
    """All stacks of the three environments, with `sceptre launch` (CreateStack, so moto gives
    the stacks their outputs), the environments at the same time."""
    names = fixture.environments(repo)
    start = time.perf_counter()
    procs = {}
    for name in names:
        log = open(scratch / f"launch-{name}.log", "w")
        procs[name] = subprocess.Popen([a.sceptre, "launch", "-y", ""], cwd=projects / name,
                                       env=env, stdout=log, stderr=subprocess.STDOUT)
    failed = [n for n, p in procs.items() if p.wait() != 0]
    secs = time.perf_counter() - start
    if failed:
        for n in failed:
            say(f"--- sceptre launch {n}: last lines of {scratch}/launch-{n}.log")
            say("\n".join((scratch / f"launch-{n}.log").read_text().splitlines()[-25:]))
        die(f"deploying with sceptre launch failed for {', '.join(failed)}")
    say(f"deployed {sum(1 for _ in fixture.all_stacks(repo))} stacks with `sceptre launch` "
        f"(the {len(names)} environments at once) in {secs:.1f} s; checking them:")
    if fixture.check_stacks(moto, repo):
        die("some stacks are not deployed as the benchmark needs (above)")


def change_template(repo):
    path = repo / CHANGED_TEMPLATE
    text = path.read_text()
    if CHANGE_FROM not in text:
        die(f"{CHANGED_TEMPLATE} has no `{CHANGE_FROM}` any more: update tools/bench/run.py")
    path.write_text(text.replace(CHANGE_FROM, CHANGE_TO))
    run(GIT + ["commit", "-qam", "Redis: one more day of snapshots"], repo)
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


# ------------------------------------------------------------------------------------------------
# The measured commands
# ------------------------------------------------------------------------------------------------

FORMWORK_FORMS = {
    "full": [],
    "pr": ["--base", "HEAD~1", "--head", "HEAD"],
    # Every stack read and given a change set (none judged by record or comparison): the
    # throttled run's many calls.
    "refresh": ["--refresh"],
}


def formwork_plan(a, repo, url, form, scratch, tag):
    out, err = scratch / f"plan-{form}-{tag}.json", scratch / f"plan-{form}-{tag}.err"
    cmd = [a.formwork, "plan", *FORMWORK_FORMS[form], "--no-record", "--report-calls",
           "--output", "json"]
    start = time.perf_counter()
    with open(out, "w") as o, open(err, "w") as e:
        code = subprocess.run(cmd, cwd=repo, env=aws_env(url), stdout=o, stderr=e).returncode
    secs = time.perf_counter() - start
    calls = None
    for line in err.read_text().splitlines():
        if line.startswith("{"):
            try:
                calls = json.loads(line)
            except ValueError:
                pass
    try:
        plan = json.loads(out.read_text())
    except ValueError:
        plan = None
    return {"secs": secs, "code": code, "calls": calls, "plan": plan, "err": err, "out": out}


def sceptre_diff(a, projects, repo, url, scratch, tag):
    """`sceptre diff` of every stack of each environment, one environment after the other, as a
    user would run it; its output goes to files."""
    per_env, codes = {}, {}
    for name in fixture.environments(repo):
        out = scratch / f"diff-{name}-{tag}.txt"
        secs, code = run([a.sceptre, "diff", ""], projects / name, aws_env(url), out, check=False)
        per_env[name], codes[name] = secs, code
    return {"secs": sum(per_env.values()), "per_env": per_env, "codes": codes}


def check_formwork(result, repo, form):
    """What is wrong with a formwork plan run, as a list of lines (empty when it did the work)."""
    problems = []
    if result["code"] != 2:
        problems.append(f"exit code {result['code']} (2 expected: changes planned); stderr: "
                        + result["err"].read_text().strip()[-1500:])
    if result["calls"] is None:
        problems.append("no call counts on standard error (--report-calls)")
    plan = result["plan"]
    if plan is None:
        problems.append("no JSON plan on standard output")
        return problems
    envs = fixture.environments(repo)
    units = [(e["name"], u) for e in plan["environments"] for u in e["units"]]
    expected = 18 * len(envs) if form in ("full", "refresh") else None
    if expected and len(units) != expected:
        problems.append(f"{len(units)} stacks planned, {expected} expected")
    for env, u in units:
        want = "update" if u["stack"] == CHANGED_STACK else "no_change"
        if u["action"] != want:
            problems.append(f"{env}/{u['stack']}: {u['action']} ({want} expected)"
                            + (f": {u['message']}" if u.get("message") else ""))
    updated = {env for env, u in units if u["stack"] == CHANGED_STACK}
    if updated != set(envs):
        problems.append(f"{CHANGED_STACK} planned in {sorted(updated)}, expected in {envs}")
    return problems


def check_sceptre(result, projects, repo, scratch, tag):
    problems = []
    for name, code in result["codes"].items():
        text = (scratch / f"diff-{name}-{tag}.txt").read_text()
        if code != 0:
            problems.append(f"sceptre diff {name}: exit code {code}: {text[-1500:]}")
        elif f"Template difference for {name}-{CHANGED_STACK}" not in text:
            problems.append(f"sceptre diff {name}: no template difference shown for "
                            f"{name}-{CHANGED_STACK}")
    return problems


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------


def fmt_s(x):
    return f"{x:.2f} s" if x < 10 else f"{x:.1f} s"


def ops_line(counter, per=None, indent="      "):
    lines = []
    for op, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"{indent}{op:<36} {n:>4}" + (f"   {n / per:5.2f} per stack" if per else ""))
    return "\n".join(lines)


def short(op):
    return op.split(".", 1)[1]


def unchanged_groups(per_stack, unchanged):
    """Unchanged stacks grouped by the calls that named them."""
    groups = defaultdict(list)
    for name in unchanged:
        c = per_stack.get(name, Counter())
        key = tuple(sorted(c.items()))
        groups[key].append(name)
    return groups


def list_param_stacks(repo):
    """Stack keys whose template has a parameter of a List type (moto returns its value as a
    Python list repr in DescribeStacks)."""
    out = set()
    env = fixture.Env(repo, fixture.environments(repo)[0])
    for key, stack, _ in env.stacks():
        with open(env.pipeline_dir / stack["template"]) as f:
            doc = fixture.yaml.load(f, Loader=fixture.TemplateLoader) or {}
        for p in (doc.get("Parameters") or {}).values():
            t = str((p or {}).get("Type", ""))
            if t.startswith("List<") or t == "CommaDelimitedList":
                out.add(key)
    return out


def secret_stacks(repo):
    env = fixture.Env(repo, fixture.environments(repo)[0])
    out = set()
    for key, stack, own in env.stacks():
        for v in env.desired(key, stack, own)["parameters"].values():
            if "${ssm:" in v:
                out.add(key)
    return out


def describe_group(ops, keys, list_keys, secret_keys):
    why = []
    names = {op for op, _ in ops}
    made_cs = "CloudFormation.CreateChangeSet" in names
    if not made_cs:
        why.append("compared with what is deployed: equal, no change set")
    else:
        if keys & secret_keys:
            why.append("secret (SSM SecureString) parameter: cannot be compared, always a change "
                       "set, empty, deleted")
        if keys & list_keys - secret_keys:
            why.append("List<…> parameter: moto's DescribeStacks returns its value as a Python "
                       "list repr (\"['subnet-…', 'subnet-…']\"), so it never equals the "
                       "comma-joined value; change set, empty, deleted")
        if not keys & (secret_keys | list_keys):
            why.append("change set made, empty, deleted")
    return "; ".join(why)


def units_of(plan):
    return [(e["name"], u) for e in (plan or {}).get("environments", []) for u in e["units"]]


def report(a, p):
    repo, commit, results, counted = p["repo"], p["commit"], p["results"], p["counted"]
    envs = fixture.environments(repo)
    n_stacks = sum(1 for _ in fixture.all_stacks(repo))
    say()
    say("=" * 98)
    say(f"formwork plan vs Sceptre 4.7.0 (sceptre diff): PlaceOS, {len(envs)} environments "
        f"({', '.join(envs)}) x 18 stacks = {n_stacks} stacks")
    say(f"endpoint: {p['label']}")
    say(f"change under review: {CHANGED_TEMPLATE}: `{CHANGE_FROM}` -> 8 days (commit {commit})")
    say("Sceptre side: `sceptre diff` per environment, its own plan command (resolves !stack_output "
        "and !ssm, compares template, parameters and tags with what is deployed, makes no change "
        "set); its change-set commands do not work on moto, where change-set names are global and "
        "Sceptre gives all stacks of a command the same one")
    say(f"{len(results['full'])} timed runs of each command, interleaved (machine load average "
        f"{p['load'][0]:.2f} before them, {p['load'][1]:.2f} after; {os.cpu_count()} cores)")
    say("=" * 98)

    def stat(xs):
        return statistics.median(xs), min(xs), max(xs)

    full = [r["secs"] for r in results["full"]]
    pr = [r["secs"] for r in results["pr"]]
    sc = [r["secs"] for r in results["sceptre"]]
    pr_units = len(units_of(counted["pr"]["plan"]))
    say()
    say(f"{'wall time':<62}{'median':>10}{'min':>10}{'max':>10}")
    rows = [
        (f"formwork plan, every stack ({n_stacks})", full),
        (f"formwork plan --base HEAD~1 --head HEAD (affected: {pr_units})", pr),
        (f"sceptre diff, every stack ({n_stacks}), one environment after another", sc),
    ]
    for label, xs in rows:
        m, lo, hi = stat(xs)
        say(f"  {label:<60}{fmt_s(m):>10}{fmt_s(lo):>10}{fmt_s(hi):>10}")
    for name in envs:
        m, lo, hi = stat([r["per_env"][name] for r in results["sceptre"]])
        say(f"    {'sceptre diff of ' + name + ' (18 stacks)':<58}{fmt_s(m):>10}{fmt_s(lo):>10}"
            f"{fmt_s(hi):>10}")
    ratio = statistics.median(sc) / statistics.median(full)
    ratio_min = min(sc) / min(full)
    ratio_pr = statistics.median(sc) / statistics.median(pr)
    say()
    say(f"  Sceptre / formwork, every stack: {ratio:.1f}x (medians), {ratio_min:.1f}x (minimums)"
        f"   target: formwork at least {TARGET_RATIO:.0f}x faster: "
        f"{'PASS' if ratio >= TARGET_RATIO else 'MISS'}")
    say(f"  Sceptre, every stack / formwork, pull-request form: {ratio_pr:.1f}x (medians)")
    say(f"  (deploying the {n_stacks} stacks first with sceptre launch took {p['deploy']:.1f} s; "
        "not compared)")

    list_keys, secret_keys = list_param_stacks(repo), secret_stacks(repo)
    say()
    say("AWS API calls: formwork counts its own (--report-calls); every command also ran once "
        "through tools/bench/count_proxy.py, which counts what reaches moto and which stack each "
        "call names")
    worst = None
    for form, label in (("full", "formwork plan, every stack"),
                        ("pr", "formwork plan --base HEAD~1 --head HEAD")):
        c = counted[form]
        own, proxy = Counter(c["calls"] or {}), Counter(c["proxy"])
        units = units_of(c["plan"])
        total = sum(own.values())
        say()
        say(f"  {label}: {total} calls for {len(units)} planned stacks = "
            f"{total / max(len(units), 1):.2f} per stack")
        say(ops_line(own, len(units) or None))
        timed = [Counter(r["calls"] or {}) for r in results[form]]
        say("    proxy: " + ("the same counts" if proxy == own else
                             "OTHER counts: " + json.dumps(dict(proxy), sort_keys=True))
            + f"; the {len(timed)} timed runs reported "
            + ("the same counts" if all(t == own for t in timed) else "other counts: " + "; ".join(
                json.dumps(dict(t), sort_keys=True) for t in timed if t != own)))
        unchanged = sorted(f"{env}-{u['stack']}" for env, u in units if u["action"] == "no_change")
        changed = sorted(f"{env}-{u['stack']}" for env, u in units if u["action"] != "no_change")
        per_stack, other = c["per_stack"]
        say("    calls naming each stack (StackName, or a change set made for it):")
        say(f"      {len(changed)} changed: " + ", ".join(
            f"{s} {sum(per_stack.get(s, Counter()).values())} ("
            + ", ".join(short(op) for op in sorted(per_stack.get(s, Counter()))) + ")"
            for s in changed))
        groups = unchanged_groups(per_stack, unchanged)
        most = 0
        say(f"      {len(unchanged)} unchanged:")
        for ops, names in sorted(groups.items(), key=lambda kv: sum(n for _, n in kv[0])):
            n = sum(k for _, k in ops)
            most = max(most, n)
            keys = {s.split("-", 1)[1] for s in names}
            say(f"        {n} calls x {len(names):>2} stacks: "
                + (", ".join(short(op) + (f" x{k}" if k > 1 else "") for op, k in ops) or "none"))
            say(f"          {', '.join(sorted(keys))}: "
                f"{describe_group(ops, keys, list_keys, secret_keys)}")
        planned = set(changed) | set(unchanged)
        upstream = {st: cc for st, cc in per_stack.items() if st not in planned}
        if upstream:
            say(f"      + {len(upstream)} stacks outside the plan whose outputs planned stacks "
                "read: " + ", ".join(f"{short(op)} {k}" for op, k in
                                     sum(upstream.values(), Counter()).items()))
        if other:
            say("      + once per run or per environment: "
                + ", ".join(f"{op} {k}" for op, k in sorted(other.items())))
        if form == "full":
            on_changed = sum(sum(per_stack.get(st, Counter()).values()) for st in changed)
            worst = (sum(proxy.values()) - on_changed) / max(len(unchanged), 1)
            by = Counter((u.get("unchanged_by") or {}).get("by", "?") for _, u in units
                         if u["action"] == "no_change")
            say(f"    unchanged stacks judged by: " + ", ".join(
                f"{k} {n}" for k, n in sorted(by.items())))
            say(f"    per changed stack: {on_changed / max(len(changed), 1):.2f} calls naming it")
            say(f"    per unchanged stack: {worst:.3f} calls ({sum(proxy.values()) - on_changed} "
                f"calls name no changed stack, over {len(unchanged)} unchanged stacks)   target: "
                f"at most {TARGET_UNCHANGED_CALLS}: "
                f"{'PASS' if worst <= TARGET_UNCHANGED_CALLS else 'MISS'}")

    t = counted["throttled"]
    t_calls = Counter(t["proxy"])
    throttled = t_calls.pop("throttled", 0)
    t_units = units_of(t["plan"])
    failed = [f"{env}/{u['stack']}" for env, u in t_units if u["action"] in ("failed", "blocked")]
    say()
    say(f"  formwork plan --refresh (every stack read, a change set each), with every "
        f"{THROTTLE_EVERY}th call answered Throttling: "
        f"{throttled} of {throttled + sum(t_calls.values())} calls throttled; exit {t['code']}, "
        f"{len(t_units)} stacks planned, {len(failed)} failed   target: none failed: "
        f"{'PASS' if not failed and t['code'] == 2 else 'MISS'}")

    sc_counts = Counter(counted["sceptre"]["proxy"])
    total = sum(sc_counts.values())
    say()
    say(f"  sceptre diff, every stack: {total} calls for {n_stacks} stacks = "
        f"{total / n_stacks:.2f} per stack (counted by the proxy)")
    say(ops_line(sc_counts, n_stacks))
    per_stack, other = counted["sceptre"]["per_stack"]
    unchanged = [f"{env}-{u['stack']}" for env, u in units_of(counted["full"]["plan"])
                 if u["action"] == "no_change"]
    if unchanged:
        named = [sum(per_stack.get(st, Counter()).values()) for st in unchanged]
        say(f"    calls naming an unchanged stack: median {statistics.median(named):g}, min "
            f"{min(named)}, max {max(named)} (DescribeStacks for the outputs others read count "
            f"for the stack read); {sum(other.values())} calls name no stack ("
            + ", ".join(f"{short(op)} {k}" for op, k in sorted(other.items())) + ")")
    differing = sum(len(re.findall(r"^==> Difference detected for stack ",
                                   (p["scratch"] / f"diff-{name}-counted.txt").read_text(), re.M))
                    for name in envs)
    say(f"    sceptre diff reported {differing} of {n_stacks} stacks as different")

    problems = sorted(set(p["problems"]))
    say()
    if problems:
        say("PROBLEMS (not every command did the work it was timed on):")
        for line in problems[:30]:
            say(f"  - {line}")
        if len(problems) > 30:
            say(f"  … and {len(problems) - 30} more")
    else:
        say(f"checked: every formwork run planned the {len(envs)} {CHANGED_STACK} stacks as "
            "updates and every other stack as no change; every sceptre diff showed the template "
            f"difference of {CHANGED_STACK}")
    p["summary"] = {"full": statistics.median(full), "pr": statistics.median(pr),
                    "sceptre": statistics.median(sc), "ratio": ratio, "worst": worst,
                    "calls": sum(Counter(counted["full"]["calls"] or {}).values()),
                    "sceptre_calls": total, "stacks": n_stacks}


def summary(passes):
    say()
    say("=" * 98)
    say("summary (PASS/MISS per target; a MISS never fails the benchmark)")
    for p in passes:
        s = p["summary"]
        say(f"  {p['label']}:")
        say(f"    formwork {fmt_s(s['full'])} (pull-request form {fmt_s(s['pr'])}), sceptre diff "
            f"{fmt_s(s['sceptre'])}: {s['ratio']:.1f}x  "
            f"[{'PASS' if s['ratio'] >= TARGET_RATIO else 'MISS'}: at least {TARGET_RATIO:.0f}x]")
        say(f"    calls per stack: formwork {s['calls'] / s['stacks']:.2f}, Sceptre "
            f"{s['sceptre_calls'] / s['stacks']:.2f}; per unchanged stack {s['worst']:.3f} "
            f"formwork calls  [{'PASS' if s['worst'] <= TARGET_UNCHANGED_CALLS else 'MISS'}: at "
            f"most {TARGET_UNCHANGED_CALLS}]")


def bench(a, label, moto, scratch, quiet):
    """One pass: scene, deployment, change, counted runs, timed runs; returns what report() needs."""
    say()
    say(f"--- pass: {label}, at {moto}")
    scratch.mkdir(parents=True)
    env = aws_env(moto)
    repo, projects = setup(a, moto, scratch, env, quiet)
    deploy_start = time.perf_counter()
    deploy(a, moto, projects, repo, env, scratch)
    deploy_secs = time.perf_counter() - deploy_start
    # formwork's first plan of the stacks Sceptre deployed, before the change: it reads every
    # stack and records those it finds unchanged, as a team's first plan after adopting formwork
    # (or any apply) does; the plans measured below start from those records.
    adopted = formwork_plan(a, repo, moto, "full", scratch, "adopt")
    if adopted["code"] != 0:
        die(f"formwork's first plan of the deployed stacks did not find them unchanged (exit "
            f"{adopted['code']}): see {adopted['err']} and {adopted['out']}")
    say(f"formwork's first plan of the deployed stacks: {fmt_s(adopted['secs'])}, "
        f"{sum((adopted['calls'] or {}).values())} calls, every stack unchanged and recorded")
    commit = change_template(repo)
    say(f"committed the change to {CHANGED_TEMPLATE} ({commit}); Sceptre reads the same file")

    problems = []
    proxy = Proxy(moto, scratch)
    try:
        # One counted run of each command through the proxy; it also warms caches.
        say("counting run (through the proxy) ...")
        counted = {}
        for form in ("full", "pr"):
            fixture.clean_change_sets(moto, repo)
            proxy.reset()
            r = formwork_plan(a, repo, proxy.url, form, scratch, "counted")
            r["proxy"], r["per_stack"] = proxy.counts(), proxy.per_stack()
            proxy.keep(f"formwork-{form}")
            counted[form] = r
            problems += [f"formwork {form} (counted run): {p}"
                         for p in check_formwork(r, repo, form)]
        # The same plan with every fifth call answered `Throttling`: it must still plan every
        # stack, the retries taking the throttling.
        fixture.clean_change_sets(moto, repo)
        proxy.reset()
        proxy.throttle_every(THROTTLE_EVERY)
        r = formwork_plan(a, repo, proxy.url, "refresh", scratch, "throttled")
        r["proxy"] = proxy.counts()
        counted["throttled"] = r
        problems += [f"formwork full (every {THROTTLE_EVERY}th call throttled): {p}"
                     for p in check_formwork(r, repo, "refresh")]
        proxy.reset()
        r = sceptre_diff(a, projects, repo, proxy.url, scratch, "counted")
        r["proxy"], r["per_stack"] = proxy.counts(), proxy.per_stack()
        proxy.keep("sceptre")
        counted["sceptre"] = r
        problems += [f"sceptre (counted run): {p}"
                     for p in check_sceptre(r, projects, repo, scratch, "counted")]
    finally:
        proxy.stop()

    results = {"full": [], "pr": [], "sceptre": []}
    load_before = os.getloadavg()[0]
    for i in range(a.reps):
        say(f"timed run {i + 1}/{a.reps} ...")
        order = ["full", "pr", "sceptre"] if i % 2 == 0 else ["sceptre", "full", "pr"]
        for what in order:
            tag = f"run{i + 1}"
            if what == "sceptre":
                r = sceptre_diff(a, projects, repo, moto, scratch, tag)
                problems += [f"sceptre run {i + 1}: {p}"
                             for p in check_sceptre(r, projects, repo, scratch, tag)]
            else:
                fixture.clean_change_sets(moto, repo)  # every run starts from the same state
                r = formwork_plan(a, repo, moto, what, scratch, tag)
                problems += [f"formwork {what} run {i + 1}: {p}"
                             for p in check_formwork(r, repo, what)]
            results[what].append(r)
    load = (load_before, os.getloadavg()[0])
    return {"label": label, "load": load, "repo": repo, "scratch": scratch, "commit": commit, "results": results,
            "counted": counted, "problems": problems, "deploy": deploy_secs, "adopted": adopted}


def main(argv):
    if argv[:1] == ["summary"]:
        passes = [json.loads((Path(d) / "summary.json").read_text()) for d in argv[1:]]
        summary(passes)
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["pass"])
    ap.add_argument("name", choices=sorted(PASSES))
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--formwork", required=True)
    ap.add_argument("--moto", required=True)
    ap.add_argument("--moto-python", required=True)
    ap.add_argument("--sceptre", required=True)
    ap.add_argument("--scratch", type=Path, required=True)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args(argv)
    p = bench(a, PASSES[a.name], a.moto, a.scratch, quiet=a.name != "stock")
    report(a, p)
    (a.scratch / "summary.json").write_text(json.dumps({"label": p["label"],
                                                         "summary": p["summary"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
