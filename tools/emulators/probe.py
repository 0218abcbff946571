"""Small probes for scripts/emulators and tests/it/common/aws.rs (standard library only).

    probe.py freeport                      print a free TCP port on 127.0.0.1
    probe.py wait moto|localstack URL PID SECONDS
                                           wait until the server at URL is healthy; exit 1 on
                                           timeout, 2 when process PID is gone
    probe.py account URL                   print the account STS GetCallerIdentity reports
"""
import json
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request

# moto and LocalStack route a request to a service by the credential scope of its
# Authorization header (moto answers with S3's ListBuckets without one); neither checks the
# signature by default.
FAKE_AUTH = ("AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, "
             "SignedHeaders=host;x-amz-date, Signature=00")


def freeport():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def caller_account(url, timeout=5):
    req = urllib.request.Request(
        url.rstrip("/") + "/",
        data=b"Action=GetCallerIdentity&Version=2011-06-15",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": FAKE_AUTH.format(service="sts"),
        },
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        body = resp.read().decode()
    m = re.search(r"<Account>(\d+)</Account>", body)
    if not m:
        raise RuntimeError("no <Account> in GetCallerIdentity response: " + body[:200])
    return m.group(1)


def healthy(kind, url):
    try:
        if kind == "moto":
            caller_account(url, timeout=2)
            return True
        with urllib.request.urlopen(url.rstrip("/") + "/_localstack/health", timeout=2) as resp:
            services = json.load(resp).get("services", {})
        return services.get("cloudformation") in ("available", "running")
    except (OSError, ValueError, RuntimeError, urllib.error.URLError):
        return False


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) still answers signal 0.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def wait(kind, url, pid, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if healthy(kind, url):
            return 0
        if not alive(pid):
            print(f"{kind} (pid {pid}) exited before it was healthy", file=sys.stderr)
            return 2
        time.sleep(0.1)
    print(f"{kind} at {url} not healthy after {seconds} s", file=sys.stderr)
    return 1


def main(argv):
    if argv[:1] == ["freeport"]:
        print(freeport())
        return 0
    if argv[:1] == ["wait"] and len(argv) == 5 and argv[1] in ("moto", "localstack"):
        return wait(argv[1], argv[2], int(argv[3]), float(argv[4]))
    if argv[:1] == ["account"] and len(argv) == 2:
        print(caller_account(argv[1]))
        return 0
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
