"""The body of scripts/bench-scale: `formwork plan` of ENVS environments x STACKS stacks across
ACCOUNTS accounts, against a simulated endpoint with a latency per call and a rate limit per
account (tools/bench/scale_sim.py). Standard library only.

    scale.py --formwork BIN --scratch DIR [--envs 1000] [--stacks 30] [--accounts 20]
             [--latency-ms 60] [--page-latency-ms 250] [--page-size 100] [--rate 25]
             [--burst 50] [--max-in-flight 8]

The config repository (git) has one pipeline of STACKS stacks, each an SSM parameter whose
value comes from the output of the stack before it in a binary tree (stack i takes stack
(i-1)/2's output: ceil(log2(STACKS+1)) levels), and ENVS environments spread evenly over the
accounts, each assuming a role in its account. The simulated accounts hold every stack as
formwork would deploy it. Three plans of every stack of every environment run one after the
other, as a team would see them:

  1. first: no records yet, every stack is read (its template fetched and compared) and found
     unchanged, which records it;
  2. and 3. steady: every stack judged unchanged from its record.

For each: wall time, peak memory (maximum resident set size), calls by operation, throttled
calls, and the figures worked out on paper for comparison.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com",
       "-c", "commit.gpgsign=false"]
REGION = "eu-west-1"
TEMPLATE = """Parameters:
  Prev:
    Type: String
Resources:
  Value:
    Type: AWS::SSM::Parameter
    Properties:
      Type: String
      Value: !Sub '${Prev}+1'
Outputs:
  Value:
    Value: !Sub '${Prev}+1'
"""


def say(msg=""):
    print(msg, flush=True)


def die(msg):
    print(f"bench-scale: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def parent(i):
    return (i - 1) // 2


def generate(a, repo):
    """The config repository and the simulator's state."""
    keys = [f"s{i:02d}" for i in range(a.stacks)]
    lines = ["pipeline: scale", "stacks:"]
    for i, key in enumerate(keys):
        prev = "${env.name}" if i == 0 else "${" + keys[parent(i)] + ".Value}"
        lines += [f"  {key}:", "    template: templates/value.yml", "    parameters:",
                  f"      Prev: \"{prev}\""]
    (repo / "pipelines/scale/templates").mkdir(parents=True)
    (repo / "pipelines/scale/pipeline.yml").write_text("\n".join(lines) + "\n")
    (repo / "pipelines/scale/templates/value.yml").write_text(TEMPLATE)
    accounts = [f"{100000000000 + k}" for k in range(a.accounts)]
    state = {"region": REGION, "accounts": {acct: {} for acct in accounts}}
    for e in range(a.envs):
        name = f"env-{e:04d}"
        acct = accounts[e % a.accounts]
        d = repo / "environments" / name
        d.mkdir(parents=True)
        (d / "environment.yml").write_text(
            f"pipeline: scale\naccount: \"{acct}\"\nregion: {REGION}\n"
            f"role_arn: arn:aws:iam::{acct}:role/formwork-plan\n")
        values = {}
        for i, key in enumerate(keys):
            prev = name if i == 0 else values[keys[parent(i)]]
            values[key] = f"{prev}+1"
            state["accounts"][acct][f"{name}-{key}"] = {
                "parameters": {"Prev": prev},
                "tags": {"formwork:pipeline": "scale", "formwork:environment": name},
                "outputs": {"Value": values[key]},
                "template": TEMPLATE,
            }
    (repo / ".gitignore").write_text(".formwork/\n")
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run(GIT + ["add", "-A"], cwd=repo, check=True)
    subprocess.run(GIT + ["commit", "-qm", "scale"], cwd=repo, check=True)
    return state


class Simulator:
    def __init__(self, a, state_file, scratch):
        self.port_file = scratch / "sim.port"
        cmd = [sys.executable, str(Path(__file__).resolve().parent / "scale_sim.py"),
               str(state_file), str(self.port_file), str(scratch / "sim.log"),
               "--latency-ms", str(a.latency_ms), "--page-latency-ms", str(a.page_latency_ms),
               "--page-size", str(a.page_size), "--rate", str(a.rate), "--burst", str(a.burst)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(scratch / "sim.err", "w"),
                                     start_new_session=True)
        for _ in range(600):
            if self.port_file.exists():
                break
            if self.proc.poll() is not None:
                die("the simulator did not start: " + (scratch / "sim.err").read_text())
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port_file.read_text().strip()}"

    def counts(self):
        return Counter(json.load(urllib.request.urlopen(self.url + "/__counts")))

    def reset(self):
        urllib.request.urlopen(urllib.request.Request(self.url + "/__reset", method="POST"))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def plan(a, repo, sim, scratch, tag):
    env = dict(os.environ, AWS_ENDPOINT_URL=sim.url, AWS_ACCESS_KEY_ID="bench",
               AWS_SECRET_ACCESS_KEY="bench", AWS_REGION=REGION, NO_COLOR="1",
               FORMWORK_MAX_IN_FLIGHT=str(a.max_in_flight))
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "FORMWORK_REPO", "FORMWORK_DATA_DIR"):
        env.pop(k, None)
    sim.reset()
    out, err = scratch / f"plan-{tag}.json", scratch / f"plan-{tag}.err"
    start = time.perf_counter()
    with open(out, "w") as o, open(err, "w") as e:
        p = subprocess.Popen([a.formwork, "plan", "--no-record", "--report-calls",
                              "--output", "json"], cwd=repo, env=env, stdout=o, stderr=e)
        _, status, usage = os.wait4(p.pid, 0)
    secs = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    try:
        doc = json.loads(out.read_text())
    except ValueError:
        doc = None
    units = [u for e in (doc or {}).get("environments", []) for u in e["units"]]
    return {"tag": tag, "secs": secs, "code": code, "rss_mib": usage.ru_maxrss / 1024,
            "units": units, "sim": sim.counts(), "err": err,
            "by": Counter((u.get("unchanged_by") or {}).get("by", u["action"]) for u in units)}


def report(a, runs):
    n = a.envs * a.stacks
    per_account = math.ceil(a.envs / a.accounts) * a.stacks
    pages = a.accounts * math.ceil(per_account / a.page_size)
    sessions = a.accounts
    say()
    say("=" * 98)
    say(f"formwork plan at scale: {a.envs} environments x {a.stacks} stacks = {n} stacks across "
        f"{a.accounts} accounts ({per_account} stacks each), one region")
    say(f"simulated endpoint (tools/bench/scale_sim.py): {a.latency_ms:g} ms per call, "
        f"{a.page_latency_ms:g} ms per listing page of {a.page_size}; {a.rate:g} calls/s per "
        f"account (burst {a.burst:g}), Throttling beyond; formwork --max-in-flight "
        f"{a.max_in_flight} per account and region")
    say("=" * 98)
    say()
    say("on paper, per plan of every stack:")
    say(f"  account guard: {sessions} AssumeRole + {sessions} GetCallerIdentity (one session per "
        "account, region and role)")
    say(f"  listing: {pages} DescribeStacks pages ({a.accounts} accounts x "
        f"{math.ceil(per_account / a.page_size)} pages)")
    say(f"  first plan: + {n} GetTemplate (each stack compared) = {2 * sessions + pages + n} "
        f"calls; at {a.rate:g}/s per account at least {per_account / a.rate:.0f} s")
    say(f"  steady plan: {2 * sessions + pages} calls = {(2 * sessions + pages) / n:.4f} per "
        f"stack; at least {math.ceil(per_account / a.page_size) * a.page_latency_ms / 1000:.1f} s "
        "of listing per account, accounts in parallel")
    say()
    say(f"{'plan':<10}{'exit':>5}{'wall':>10}{'peak RSS':>11}{'calls':>8}{'per stack':>11}"
        f"{'throttled':>11}  unchanged judged by")
    for r in runs:
        throttled = sum(v for k, v in r["sim"].items() if k.endswith(" throttled"))
        total = sum(r["sim"].values())
        say(f"{r['tag']:<10}{r['code']:>5}{r['secs']:>9.1f}s{r['rss_mib']:>9.0f}MiB{total:>8}"
            f"{total / n:>11.4f}{throttled:>11}  "
            + ", ".join(f"{k} {v}" for k, v in sorted(r["by"].items())))
    say()
    for r in runs:
        say(f"  {r['tag']}: " + ", ".join(f"{k} {v}" for k, v in sorted(r["sim"].items())))
    steady = runs[-1]
    per = sum(steady["sim"].values()) / n
    say()
    say(f"steady plan: {per:.4f} calls per unchanged stack   target: at most 0.1: "
        f"{'PASS' if per <= 0.1 and steady['code'] == 0 else 'MISS'}")
    bad = [r for r in runs if r["code"] != 0 or len(r["units"]) != n]
    if bad:
        say("PROBLEMS:")
        for r in bad:
            say(f"  {r['tag']}: exit {r['code']}, {len(r['units'])} of {n} stacks planned; "
                f"last lines of {r['err']}:")
            say("\n".join(r["err"].read_text().splitlines()[-10:]))


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--formwork", required=True)
    ap.add_argument("--scratch", required=True, type=Path)
    ap.add_argument("--envs", type=int, default=1000)
    ap.add_argument("--stacks", type=int, default=30)
    ap.add_argument("--accounts", type=int, default=20)
    ap.add_argument("--latency-ms", type=float, default=60)
    ap.add_argument("--page-latency-ms", type=float, default=250)
    ap.add_argument("--page-size", type=int, default=100)
    ap.add_argument("--rate", type=float, default=25)
    ap.add_argument("--burst", type=float, default=50)
    ap.add_argument("--max-in-flight", type=int, default=8)
    a = ap.parse_args(argv)
    repo = a.scratch / "repo"
    repo.mkdir(parents=True)
    started = time.perf_counter()
    state = generate(a, repo)
    state_file = a.scratch / "state.json"
    state_file.write_text(json.dumps(state))
    say(f"generated {a.envs} environments x {a.stacks} stacks in "
        f"{time.perf_counter() - started:.1f} s")
    sim = Simulator(a, state_file, a.scratch)
    try:
        runs = []
        for tag in ("first", "steady", "steady-2"):
            say(f"plan: {tag} ...")
            runs.append(plan(a, repo, sim, a.scratch, tag))
    finally:
        sim.stop()
    report(a, runs)


if __name__ == "__main__":
    main(sys.argv[1:])
