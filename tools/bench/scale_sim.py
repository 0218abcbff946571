"""A simulated AWS endpoint for scripts/bench-scale (standard library only): many accounts
behind one loopback port, each with its stacks, answering the calls a plan makes with a
latency per call and a rate limit per account, as AWS would.

    scale_sim.py STATE_JSON PORT_FILE LOG_FILE [--latency-ms 60] [--page-latency-ms 250]
                 [--page-size 100] [--rate 25] [--burst 50]

STATE_JSON: {"region": ..., "accounts": {"<account id>": {"<stack name>": {"parameters": {...},
"tags": {...}, "outputs": {...}, "template": "<body>"}}}}.

Answered (anything else is a 400 naming the call, so a benchmark never measures a call it did
not mean to):

- STS AssumeRole: credentials whose access key id names the role's account (`SIM<account>`);
  GetCallerIdentity: the account of the caller's access key id (a key not made here: the first
  account).
- CloudFormation DescribeStacks of one stack (ValidationError "does not exist" for none), and
  without a name: the account's stacks, PAGE_SIZE per page with a NextToken;
  GetTemplate (the body as submitted).

Latency: every call sleeps LATENCY_MS (a page of a listing PAGE_LATENCY_MS) before it answers.
Rate limit: a token bucket per account (RATE calls per second, BURST at once); a call finding it
empty gets CloudFormation's `Throttling` error at once, as AWS answers "Rate exceeded". These are
assumptions to measure against, not AWS's figures: AWS does not publish per-call rates for
CloudFormation (its documentation says only that calls beyond the allowed rate are throttled).

LOG_FILE gets one JSON line per call: {"op", "account", "ms", "status"}; GET /__counts answers
the counts by operation and status so far, POST /__reset clears them.
"""
import argparse
import json
import re
import sys
import threading
import time
import urllib.parse
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

CFN_NS = "http://cloudformation.amazonaws.com/doc/2010-05-15/"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
CREATED = "2026-11-01T09:00:00Z"


class Bucket:
    def __init__(self, rate, burst):
        self.rate, self.burst = rate, burst
        self.tokens, self.at = float(burst), time.monotonic()
        self.lock = threading.Lock()

    def take(self):
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


class Sim:
    def __init__(self, state, args, log):
        self.region = state["region"]
        self.accounts = state["accounts"]
        self.order = {a: sorted(s) for a, s in self.accounts.items()}
        self.first = sorted(self.accounts)[0]
        self.args = args
        self.buckets = {a: Bucket(args.rate, args.burst) for a in self.accounts}
        self.log = log
        self.lock = threading.Lock()
        self.counts = Counter()

    def note(self, op, account, ms, status):
        with self.lock:
            self.counts[f"{op} {status}"] += 1
            self.log.write(json.dumps({"op": op, "account": account, "ms": round(ms, 1),
                                       "status": status}) + "\n")
            self.log.flush()


def member_list(items):
    return "".join(f"<member>{i}</member>" for i in items)


def stack_xml(account, region, name, s):
    params = member_list(f"<ParameterKey>{escape(k)}</ParameterKey>"
                         f"<ParameterValue>{escape(v)}</ParameterValue>"
                         for k, v in sorted(s["parameters"].items()))
    tags = member_list(f"<Key>{escape(k)}</Key><Value>{escape(v)}</Value>"
                       for k, v in sorted(s["tags"].items()))
    outputs = member_list(f"<OutputKey>{escape(k)}</OutputKey><OutputValue>{escape(v)}"
                          f"</OutputValue>" for k, v in sorted(s["outputs"].items()))
    return (f"<member><StackName>{escape(name)}</StackName>"
            f"<StackId>arn:aws:cloudformation:{region}:{account}:stack/{escape(name)}/"
            f"00000000-0000-0000-0000-{zlib.crc32(name.encode()):012d}</StackId>"
            f"<CreationTime>{CREATED}</CreationTime><StackStatus>CREATE_COMPLETE</StackStatus>"
            f"<Parameters>{params}</Parameters><Tags>{tags}</Tags><Outputs>{outputs}</Outputs>"
            f"</member>")


def make_handler(sim):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def reply(self, status, body, ctype="text/xml"):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def error(self, status, ns, code, message):
            self.reply(status, f'<ErrorResponse xmlns="{ns}"><Error><Type>Sender</Type>'
                               f"<Code>{code}</Code><Message>{escape(message)}</Message></Error>"
                               "<RequestId>sim</RequestId></ErrorResponse>")

        def do_GET(self):
            if self.path == "/__counts":
                with sim.lock:
                    self.reply(200, json.dumps(dict(sim.counts)), "application/json")
            else:
                self.reply(404, "")

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            if self.path == "/__reset":
                with sim.lock:
                    sim.counts.clear()
                return self.reply(200, "")
            form = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}
            action = form.get("Action", "")
            auth = self.headers.get("Authorization", "")
            m = re.search(r"Credential=([^/]+)/\d+/[^/]+/([^/]+)/", auth)
            key, service = (m.group(1), m.group(2)) if m else ("", "")
            account = key[3:] if key.startswith("SIM") and key[3:] in sim.accounts else sim.first
            started = time.perf_counter()
            op = f"{service}.{action}"
            if service == "cloudformation" and not sim.buckets[account].take():
                sim.note(op, account, 0, "throttled")
                return self.error(400, CFN_NS, "Throttling", "Rate exceeded")
            status = self.answer(service, action, form, account)
            sim.note(op, account, (time.perf_counter() - started) * 1000, status)

        def answer(self, service, action, form, account):
            a = sim.args
            if service == "sts" and action == "AssumeRole":
                role = form.get("RoleArn", "")
                target = role.split(":")[4] if role.count(":") >= 5 else sim.first
                time.sleep(a.latency_ms / 1000)
                self.reply(200, f'<AssumeRoleResponse xmlns="{STS_NS}"><AssumeRoleResult>'
                                f"<Credentials><AccessKeyId>SIM{target}</AccessKeyId>"
                                "<SecretAccessKey>sim-secret</SecretAccessKey>"
                                "<SessionToken>sim-token</SessionToken>"
                                "<Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>"
                                f"<AssumedRoleUser><Arn>{escape(role)}/sim</Arn>"
                                "<AssumedRoleId>AROASIM:sim</AssumedRoleId></AssumedRoleUser>"
                                "</AssumeRoleResult><ResponseMetadata><RequestId>sim</RequestId>"
                                "</ResponseMetadata></AssumeRoleResponse>")
                return 200
            if service == "sts" and action == "GetCallerIdentity":
                time.sleep(a.latency_ms / 1000)
                self.reply(200, f'<GetCallerIdentityResponse xmlns="{STS_NS}">'
                                f"<GetCallerIdentityResult><Arn>arn:aws:sts::{account}:assumed-role/"
                                f"formwork/sim</Arn><UserId>AROASIM:sim</UserId><Account>{account}"
                                "</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>"
                                "sim</RequestId></ResponseMetadata></GetCallerIdentityResponse>")
                return 200
            stacks = sim.accounts[account]
            if service == "cloudformation" and action == "DescribeStacks":
                name = form.get("StackName")
                if name is None:
                    order = sim.order[account]
                    start = int(form.get("NextToken", "0") or 0)
                    page = order[start:start + a.page_size]
                    nxt = start + a.page_size
                    time.sleep(a.page_latency_ms / 1000)
                    token = f"<NextToken>{nxt}</NextToken>" if nxt < len(order) else ""
                    members = "".join(stack_xml(account, sim.region, n, stacks[n]) for n in page)
                else:
                    time.sleep(a.latency_ms / 1000)
                    if name not in stacks:
                        self.error(400, CFN_NS, "ValidationError",
                                   f"Stack with id {name} does not exist")
                        return 400
                    token, members = "", stack_xml(account, sim.region, name, stacks[name])
                self.reply(200, f'<DescribeStacksResponse xmlns="{CFN_NS}"><DescribeStacksResult>'
                                f"<Stacks>{members}</Stacks>{token}</DescribeStacksResult>"
                                "<ResponseMetadata><RequestId>sim</RequestId></ResponseMetadata>"
                                "</DescribeStacksResponse>")
                return 200
            if service == "cloudformation" and action == "GetTemplate":
                time.sleep(a.latency_ms / 1000)
                name = form.get("StackName", "")
                if name not in stacks:
                    self.error(400, CFN_NS, "ValidationError", f"Stack with id {name} does not exist")
                    return 400
                self.reply(200, f'<GetTemplateResponse xmlns="{CFN_NS}"><GetTemplateResult>'
                                f"<TemplateBody>{escape(stacks[name]['template'])}</TemplateBody>"
                                "<StagesAvailable><member>Original</member><member>Processed"
                                "</member></StagesAvailable></GetTemplateResult>"
                                "<ResponseMetadata><RequestId>sim</RequestId></ResponseMetadata>"
                                "</GetTemplateResponse>")
                return 200
            self.error(400, CFN_NS, "NotSimulated", f"{service} {action} is not simulated")
            return 400

    return Handler


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("state")
    ap.add_argument("port_file")
    ap.add_argument("log_file")
    ap.add_argument("--latency-ms", type=float, default=60)
    ap.add_argument("--page-latency-ms", type=float, default=250)
    ap.add_argument("--page-size", type=int, default=100)
    ap.add_argument("--rate", type=float, default=25)
    ap.add_argument("--burst", type=float, default=50)
    a = ap.parse_args(argv)
    with open(a.state) as f:
        state = json.load(f)
    sim = Sim(state, a, open(a.log_file, "w"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(sim))
    server.daemon_threads = True
    server.request_queue_size = 512
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.replace(a.port_file + ".tmp", a.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
