"""A counting HTTP forwarder in front of moto, for scripts/bench-plan (standard library only).

    count_proxy.py UPSTREAM_URL PORT_FILE [LOG_FILE]

Listens on a free port of 127.0.0.1 (written to PORT_FILE once it listens) and forwards every
request unchanged to UPSTREAM_URL (moto server), answering with moto's response. Each request is
counted as `<Service>.<Operation>`: the service from the credential scope of its Authorization
header (as moto routes it), the operation from `X-Amz-Target` (JSON protocols: SSM) or the
`Action=` parameter of the form body or query string (query protocols: CloudFormation, STS).
With LOG_FILE, every request is also appended as one JSON line {"op", "stack", "status", "start",
"ms"}: the stack is the request's StackName, or for a change set named by its ARN
(DescribeChangeSet, DeleteChangeSet …) the stack whose CreateChangeSet returned that ARN; start is
seconds since the proxy started, ms how long moto took to answer.

    GET  /__counts   the counts so far, as a JSON object
    POST /__reset    set them to zero (and stop throttling)
    POST /__throttle?every=N   from now on answer every Nth call with the service's throttling
                     error instead of forwarding it (CloudFormation's and STS's `Throttling`,
                     SSM's `ThrottlingException`), counted as `throttled`
"""
import http.client
import http.server
import json
import re
import socket
import sys
import threading
import time
import urllib.parse

SERVICES = {"cloudformation": "CloudFormation", "ssm": "SSM", "sts": "STS", "s3": "S3",
            "acm": "ACM", "iam": "IAM", "ec2": "EC2"}
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailers", "transfer-encoding", "upgrade"}


class State:
    def __init__(self, upstream, log):
        self.upstream = urllib.parse.urlsplit(upstream)
        self.lock = threading.Lock()
        self.counts = {}
        self.log = open(log, "a") if log else None
        self.local = threading.local()
        self.t0 = time.perf_counter()
        self.change_sets = {}  # change set ARN -> stack name, from CreateChangeSet responses
        self.throttle_every = 0
        self.calls = 0

    def connection(self):
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port,
                                              timeout=120)
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.local.conn = conn
        return conn


def operation(headers, path, body):
    auth = headers.get("Authorization", "")
    m = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", auth)
    service = SERVICES.get(m.group(1), m.group(1)) if m else "unknown"
    target = headers.get("X-Amz-Target")
    params = {}
    if target:
        op = target.rsplit(".", 1)[-1]
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {}
    else:
        query = urllib.parse.urlsplit(path).query
        params = dict(urllib.parse.parse_qsl(query))
        ctype = headers.get("Content-Type", "")
        if body and "x-www-form-urlencoded" in ctype:
            params.update(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
        op = params.get("Action", "unknown")
    if not isinstance(params, dict):
        params = {}
    return f"{service}.{op}", params.get("StackName"), params.get("ChangeSetName")


def handler(state):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in one write, without Nagle's delay: a proxy adding 40 ms
        # (delayed ACK) per call would make the counted runs crawl.
        disable_nagle_algorithm = True
        wbufsize = -1

        def log_message(self, *args):
            pass

        def _admin(self):
            if self.path == "/__counts" and self.command == "GET":
                with state.lock:
                    body = json.dumps(state.counts, sort_keys=True).encode()
            elif self.path == "/__reset" and self.command == "POST":
                with state.lock:
                    state.counts = {}
                    state.throttle_every = state.calls = 0
                body = b"{}"
            elif self.path.startswith("/__throttle?every=") and self.command == "POST":
                with state.lock:
                    state.throttle_every = int(self.path.split("=", 1)[1])
                    state.calls = 0
                body = b"{}"
            else:
                return False
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return True

        def _forward(self):
            if self.path.startswith("/__") and self._admin():
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            op, stack, change_set = operation(self.headers, self.path, body)
            with state.lock:
                state.calls += 1
                throttle = state.throttle_every and state.calls % state.throttle_every == 0
                if throttle:
                    state.counts["throttled"] = state.counts.get("throttled", 0) + 1
            if throttle:
                return self._throttled()
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            start = time.perf_counter()
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
            with state.lock:
                if op == "CloudFormation.CreateChangeSet" and stack:
                    m = re.search(rb"<Id>([^<]+)</Id>", data) or re.search(rb'"Id"\s*:\s*"([^"]+)"', data)
                    if m:
                        state.change_sets[m.group(1).decode()] = stack
                if change_set and change_set in state.change_sets:
                    stack = state.change_sets[change_set]
                state.counts[op] = state.counts.get(op, 0) + 1
                if state.log:
                    state.log.write(json.dumps({
                        "op": op, "stack": stack, "status": resp.status,
                        "start": round(start - state.t0, 4),
                        "ms": round((time.perf_counter() - start) * 1000, 2)}) + "\n")
                    state.log.flush()
            self.send_response(resp.status, resp.reason)
            for k, v in resp.getheaders():
                if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            self.wfile.flush()

        def _throttled(self):
            if self.headers.get("X-Amz-Target"):
                data = b'{"__type":"ThrottlingException","message":"Rate exceeded"}'
                ctype = "application/x-amz-json-1.1"
            else:
                data = (b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
                        b"<Message>Rate exceeded</Message></Error><RequestId>proxy</RequestId>"
                        b"</ErrorResponse>")
                ctype = "text/xml"
            self.send_response(400)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _forward

    return Handler


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 64
    state = State(argv[0], argv[2] if len(argv) == 3 else None)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler(state))
    server.daemon_threads = True
    with open(argv[1] + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.replace(argv[1] + ".tmp", argv[1])
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
