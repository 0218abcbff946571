"""A loopback proxy in front of moto that makes every stack operation take DELAY seconds, as on
AWS, for scripts/bench-apply (standard library only).

    delay_proxy.py UPSTREAM_URL PORT_FILE LOG_FILE DELAY [CHANGE_SET_DELAY]

moto runs a stack operation synchronously: CreateStack, UpdateStack and ExecuteChangeSet return
when the stack is already CREATE_COMPLETE / UPDATE_COMPLETE. On AWS these calls return at once
and the stack stays *_IN_PROGRESS while CloudFormation works; a tool finds out that it is done by
polling. This proxy forwards every request to moto unchanged and restores that shape: from the
moment a stack operation's request arrives (ExecuteChangeSet, CreateStack, UpdateStack) until
DELAY seconds later, moto's answers about that stack are rewritten:

- DescribeStacks and ListStacks: the stack reads CREATE_IN_PROGRESS (UPDATE_IN_PROGRESS for an
  update), without Outputs or a status reason (AWS shows outputs once the stack is complete);
- DescribeStackEvents: the stack's own terminal event of the operation (CREATE_COMPLETE …) is
  left out, the events before it are shown;
- DescribeChangeSet of the executed change set: ExecutionStatus EXECUTE_IN_PROGRESS.

After DELAY seconds moto's answers pass through unchanged. Both tools see the same DELAY for
every stack, and each finds the end of it by its own polling, as it would on AWS. (Holding the
operation's response for DELAY seconds instead would hide each tool's polling granularity, which
is part of what it costs to wait for CloudFormation.) DeleteStack is not delayed (nothing here
deletes).

Change sets are not delayed unless CHANGE_SET_DELAY (seconds, default 0) is given: then for that
long after a CreateChangeSet request reached the proxy, DescribeChangeSet of the new change set
shows Status CREATE_IN_PROGRESS and ExecutionStatus UNAVAILABLE, as AWS does while it works out
the changes (moto has made the change set already).

LOG_FILE gets one JSON line per request, {"t", "op", "stack", "ms", "status"} (t: arrival,
seconds since the epoch; stack: the stack's name, also for a change set named by its ARN or a
stack named by its id), plus "shown" (the status the answer showed) for DescribeStacks of one
stack and "held": true when the answer was rewritten; and one line per stack operation,
{"t", "event": "start", "op", "stack", "kind", "ready"} (ready: when the proxy lets it finish).
"""
import http.client
import http.server
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from count_proxy import HOP_BY_HOP, operation  # noqa: E402

STACK_OPS = {"CloudFormation.ExecuteChangeSet": None, "CloudFormation.CreateStack": "CREATE",
             "CloudFormation.UpdateStack": "UPDATE"}
MEMBER = re.compile(r"<member>|</member>|<member/>")


def stack_name(name_or_id):
    """A stack's name from its name or its id (arn:…:stack/NAME/uuid)."""
    if name_or_id and name_or_id.startswith("arn:"):
        m = re.search(r":stack/([^/]+)/", name_or_id)
        return m.group(1) if m else name_or_id
    return name_or_id


def members(xml, container):
    """(start, end) of each top-level <member>…</member> of the first <container> in xml."""
    m = re.search(f"<{container}>(.*)</{container}>", xml, re.S)
    if not m:
        return []
    out, depth, start = [], 0, None
    for t in MEMBER.finditer(xml, m.start(1), m.end(1)):
        if t.group() == "<member/>":
            continue
        if t.group() == "<member>":
            if depth == 0:
                start = t.start()
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                out.append((start, t.end()))
    return out


def tag(text, name):
    m = re.search(f"<{name}>([^<]*)</{name}>", text)
    return m.group(1) if m else None


def parse_ts(s):
    s = s.rstrip("Z")
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


class State:
    def __init__(self, upstream, log, delay, change_set_delay):
        self.upstream = urllib.parse.urlsplit(upstream)
        self.delay = delay
        self.change_set_delay = change_set_delay
        self.pending = {}  # change set id or "stack/name" -> when its creation is let finish
        self.lock = threading.Lock()
        self.log = open(log, "a")
        self.local = threading.local()
        self.change_sets = {}  # change set id or "stack/name" -> (stack name, CREATE|UPDATE)
        self.windows = {}  # stack name -> {"start", "ready", "kind", "change_set"}

    def connection(self):
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port,
                                              timeout=300)
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.local.conn = conn
        return conn

    def write(self, record):
        with self.lock:
            self.log.write(json.dumps(record) + "\n")
            self.log.flush()

    def active(self, now):
        """Stack name -> window, for the operations still held."""
        with self.lock:
            return {k: w for k, w in self.windows.items() if now < w["ready"]}


def rewrite(state, op, params, data, now):
    """moto's answer as the proxy shows it; (new bytes, whether it changed)."""
    if op == "CloudFormation.DescribeChangeSet" and state.change_set_delay:
        cs = params.get("ChangeSetName")
        with state.lock:
            until = state.pending.get(cs) or state.pending.get(f"{params.get('StackName')}/{cs}")
        if until and now < until:
            xml = re.sub(r"<Status>[^<]*</Status>", "<Status>CREATE_IN_PROGRESS</Status>",
                         data.decode("utf-8"), count=1)
            xml = re.sub(r"<ExecutionStatus>[^<]*</ExecutionStatus>",
                         "<ExecutionStatus>UNAVAILABLE</ExecutionStatus>", xml, count=1)
            return xml.encode(), True
    held = state.active(now)
    if not held or op not in ("CloudFormation.DescribeStacks", "CloudFormation.ListStacks",
                              "CloudFormation.DescribeStackEvents",
                              "CloudFormation.DescribeChangeSet"):
        return data, False
    xml = data.decode("utf-8")
    changed = False
    if op == "CloudFormation.DescribeChangeSet":
        cs = params.get("ChangeSetName")
        for w in held.values():
            if w["change_set"] and cs in (w["change_set"], w.get("change_set_name")):
                new = xml.replace("<ExecutionStatus>EXECUTE_COMPLETE</ExecutionStatus>",
                                  "<ExecutionStatus>EXECUTE_IN_PROGRESS</ExecutionStatus>")
                changed = new != xml
                xml = new
        return xml.encode(), changed
    container = {"CloudFormation.DescribeStacks": "Stacks",
                 "CloudFormation.ListStacks": "StackSummaries",
                 "CloudFormation.DescribeStackEvents": "StackEvents"}[op]
    pieces, last = [], 0
    for start, end in members(xml, container):
        member = xml[start:end]
        name = tag(member, "StackName")
        w = held.get(name)
        if w is not None:
            if op == "CloudFormation.DescribeStackEvents":
                status = tag(member, "ResourceStatus") or ""
                ts = tag(member, "Timestamp")
                if (tag(member, "ResourceType") == "AWS::CloudFormation::Stack"
                        and not status.endswith("_IN_PROGRESS") and ts
                        and parse_ts(ts) >= w["start"] - 0.001):
                    pieces.append(xml[last:start])
                    last = end
                    changed = True
                continue
            new = re.sub(r"<StackStatus>[^<]*</StackStatus>",
                         f"<StackStatus>{w['kind']}_IN_PROGRESS</StackStatus>", member, count=1)
            new = re.sub(r"<Outputs>.*?</Outputs>|<Outputs/>", "", new, count=1, flags=re.S)
            new = re.sub(r"<StackStatusReason>[^<]*</StackStatusReason>", "", new, count=1)
            if new != member:
                pieces.append(xml[last:start])
                pieces.append(new)
                last = end
                changed = True
    pieces.append(xml[last:])
    return "".join(pieces).encode(), changed


def handler(state):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        wbufsize = -1

        def log_message(self, *args):
            pass

        def _forward(self):
            arrival = time.time()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            op, stack, change_set = operation(self.headers, self.path, body)
            params = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"))) \
                if "x-www-form-urlencoded" in self.headers.get("Content-Type", "") else {}
            stack = stack_name(stack)
            kind = None
            if op in STACK_OPS:
                kind = STACK_OPS[op]
                if op == "CloudFormation.ExecuteChangeSet":
                    with state.lock:
                        known = state.change_sets.get(change_set) or \
                            state.change_sets.get(f"{stack}/{change_set}")
                    if known:
                        stack, kind = known
                    else:
                        kind = kind or "UPDATE"
                if stack:
                    with state.lock:
                        state.windows[stack] = {"start": arrival, "ready": arrival + state.delay,
                                                "kind": kind, "change_set": change_set,
                                                "change_set_name": change_set}
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            for attempt in (1, 2):
                conn = state.connection()
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    break
                except (http.client.HTTPException, OSError):
                    conn.close()
                    state.local.conn = None
                    if attempt == 2:
                        raise
            done = time.time()
            if kind and stack:
                if resp.status == 200:
                    state.write({"t": round(arrival, 4), "event": "start", "op": op,
                                 "stack": stack, "kind": kind,
                                 "ready": round(arrival + state.delay, 4)})
                else:
                    with state.lock:
                        state.windows.pop(stack, None)
            if op == "CloudFormation.CreateChangeSet" and resp.status == 200 and stack:
                m = re.search(rb"<Id>([^<]+)</Id>", data)
                cs_kind = params.get("ChangeSetType", "UPDATE")
                with state.lock:
                    if m:
                        state.change_sets[m.group(1).decode()] = (stack, cs_kind)
                        state.pending[m.group(1).decode()] = arrival + state.change_set_delay
                    if change_set:
                        state.change_sets[f"{stack}/{change_set}"] = (stack, cs_kind)
                        state.pending[f"{stack}/{change_set}"] = arrival + state.change_set_delay
            if not stack and change_set:
                with state.lock:
                    known = state.change_sets.get(change_set)
                stack = known[0] if known else None
            held = False
            if resp.status == 200:
                data, held = rewrite(state, op, params, data, arrival)
            record = {"t": round(arrival, 4), "op": op, "stack": stack, "status": resp.status,
                      "ms": round((done - arrival) * 1000, 2)}
            if op == "CloudFormation.DescribeStacks" and stack:
                record["shown"] = tag(data.decode("utf-8", "replace"), "StackStatus")
            if held:
                record["held"] = True
            state.write(record)
            self.send_response(resp.status, resp.reason)
            for k, v in resp.getheaders():
                if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            self.wfile.flush()

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _forward

    return Handler


def main(argv):
    if len(argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 64
    state = State(argv[0], argv[2], float(argv[3]), float(argv[4]) if len(argv) == 5 else 0.0)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler(state))
    server.daemon_threads = True
    server.request_queue_size = 64
    with open(argv[1] + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(argv[1] + ".tmp", argv[1])
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
