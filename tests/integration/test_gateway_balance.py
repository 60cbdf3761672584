#!/usr/bin/env python3
"""gatewayd's upstream balancing against real upstreams (HTTP servers of the test on TCP):
weighted round robin and least_conn spreading requests, ip_hash and hash= keeping clients on
their member, active health checks taking a member out and bringing it back after rise=,
every member down answered 503, passive ejection after failures in a row, retries of GET
(not POST) on a refused connection, a connection closed without an answer and (retry_5xx)
a 503, the retry budget, the metrics, and health checks stopping when a reload replaces the
proxy."""

import http.client
import http.server
import json
import os
import signal
import socket
import socketserver
import threading
import time

from harness import Daemon, Tap, UnixHTTPConnection, free_port, tempdir, wait_until, write_config

t = Tap()
d = tempdir()
rundir = os.path.join(d, "run")


class TCPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Upstream:
    """An HTTP upstream that names itself; its /health answers 500 while `sick`, every path
    answers 503 while `failing`; it counts requests by method and health checks."""

    def __init__(self, name):
        self.name = name
        self.sick = False
        self.failing = False
        self.lock = threading.Lock()
        self.counts = {}
        self.health_checks = 0
        up = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                if self.path == "/health":
                    with up.lock:
                        up.health_checks += 1
                    status = 500 if up.sick else 200
                else:
                    with up.lock:
                        up.counts[self.command] = up.counts.get(self.command, 0) + 1
                    status = 503 if up.failing else 200
                out = json.dumps({"upstream": up.name, "path": self.path}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = answer

        self.server = TCPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def count(self, method="GET"):
        with self.lock:
            return self.counts.get(method, 0)

    def reset(self):
        with self.lock:
            self.counts = {}


class Resetter:
    """Accepts connections and closes them without a byte: a connection reset upstream."""

    def __init__(self):
        self.accepted = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.recv(65536)
            self.accepted += 1
            c.close()


ups = {n: Upstream(n) for n in ("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k")}
a, b, c, dd, e, f, g, h, i, j, k = (ups[n] for n in "abcdefghijk")
resetter = Resetter()
dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
port = free_port()

pools = [
    f"rr {a.url} {b.url} {c.url} weight=2",
    f"lc balance=least_conn {a.url} {b.url}",
    f"iph balance=ip_hash {a.url} {b.url} {c.url}",
    f"hdr hash=header:X-User {a.url} {b.url} {c.url}",
    f"ck hash=cookie:sid {a.url} {b.url} {c.url}",
    f"uri hash=uri {a.url} {b.url} {c.url}",
    f"health {dd.url} {e.url} health=/health health_interval_ms=100 health_timeout_ms=500 "
    "rise=2 fall=2",
    f"lonely {f.url} health=/health health_interval_ms=100 rise=1 fall=1",
    f"eject {dead} {g.url} eject_after=2 eject_ms=60000 retries=0",
    # retry_budget=100: the default 20% (past 3 a second) would refuse some of these retries.
    f"retry {dead} {h.url} eject_after=0 retry_budget=100",
    f"reset {resetter.url} {i.url} eject_after=0 retry_budget=100",
    f"r5xx {j.url} {k.url} eject_after=0 retry_5xx=on retry_budget=100",
    f"n5xx {j.url} {k.url} eject_after=0",
    f"budget {dead} {h.url} eject_after=0 retry_budget=0 retry_min_per_s=1",
]
routes = [f"/{p.split()[0]} pool={p.split()[0]}" for p in pools]


def config(pool_list):
    extra = (f'[public]\nlisten = ["127.0.0.1:{port}"]\nweb_root = "{d}"\n'
             f'[proxy]\npools = {json.dumps(pool_list)}\n'
             f'routes = {json.dumps([f"/{p.split()[0]} pool={p.split()[0]}" for p in pool_list])}\n')
    return write_config(os.path.join(d, "gatewayd.conf"), "gatewayd", rundir, d, extra)


gw = Daemon("gatewayd", config(pools), rundir)
t.ok(gw.wait_ready(), "gatewayd starts", gw.output())


def call(method, path, headers=None, source=None, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
    finally:
        conn.close()
    try:
        j = json.loads(data) if data else None
    except ValueError:
        j = None
    return r.status, j


def who(path, **kw):
    st, j = call("GET", path, **kw)
    return j.get("upstream") if st == 200 and j else st


def metrics():
    mc = UnixHTTPConnection(gw.sock, timeout=10)
    try:
        mc.request("GET", "/metrics")
        return mc.getresponse().read().decode()
    finally:
        mc.close()


def metric(name_and_labels):
    for line in metrics().splitlines():
        if line.startswith(name_and_labels + " "):
            return float(line.split()[-1])
    return None


def tally(results):
    out = {}
    for r in results:
        out[r] = out.get(r, 0) + 1
    return out


# Distribution.
seen = tally(who("/rr/x") for _ in range(40))
t.ok(seen == {"a": 10, "b": 10, "c": 20}, "smooth weighted round robin: 1:1:2 over 40", seen)
seen = tally(who("/lc/x") for _ in range(20))
t.ok(seen == {"a": 10, "b": 10}, "least_conn with nothing in flight takes turns", seen)

# ip_hash: each client address keeps its member; addresses spread.
sticky, spread = True, set()
for n in range(2, 22):
    src = f"127.0.0.{n}"
    got = {who("/iph/x", source=src) for _ in range(3)}
    sticky = sticky and len(got) == 1 and got <= {"a", "b", "c"}
    spread |= got
t.ok(sticky, "ip_hash: a client address always reaches the same member")
t.ok(len(spread) >= 2, "ip_hash: 20 addresses use more than one member", spread)

# hash=header / cookie / uri: sticky per key, spread over keys.
for pool, make in [("hdr", lambda u: {"headers": {"X-User": u}}),
                   ("ck", lambda u: {"headers": {"Cookie": f"theme=x; sid={u}"}}),
                   ("uri", None)]:
    first, ok, used = {}, True, set()
    for rnd in range(3):
        for u in range(24):
            key = f"user-{u}"
            got = who(f"/{pool}/{key}") if make is None else who(f"/{pool}/x", **make(key))
            if rnd == 0:
                first[key] = got
                used.add(got)
            ok = ok and got == first[key] and got in ("a", "b", "c")
    t.ok(ok, f"hash ({pool}): each key keeps its member over 3 rounds", first)
    t.ok(len(used) >= 2, f"hash ({pool}): 24 keys spread over the members", used)
seen = tally(who("/hdr/x") for _ in range(9))
t.ok(sum(seen.values()) == 9 and len(seen) == 3, "hash: requests without the key go round robin",
     seen)

# Active health checks: d sick is taken out after fall=2 checks, back after rise=2.
dlabel = f'strata_gateway_upstream_healthy{{pool="health",member="{dd.url}"}}'
t.ok(metric(dlabel) == 1, "a member starts healthy (gauge 1)", metric(dlabel))
t.ok(wait_until(lambda: dd.health_checks >= 2 and e.health_checks >= 2, 5),
     "health checks GET /health on every member", (dd.health_checks, e.health_checks))
dd.sick = True
t.ok(wait_until(lambda: metric(dlabel) == 0, 5), "a failing member is marked down",
     gw.output()[-1500:])
seen = tally(who("/health/x") for _ in range(10))
t.ok(seen == {"e": 10}, "traffic avoids the down member", seen)
t.ok("is down (health check /health)" in gw.output(), "its going down is logged")
dd.sick = False
t.ok(wait_until(lambda: metric(dlabel) == 1, 5), "back up after rise= good checks")
seen = tally(who("/health/x") for _ in range(10))
t.ok(seen == {"d": 5, "e": 5}, "traffic returns to it", seen)

f.sick = True
flabel = f'strata_gateway_upstream_healthy{{pool="lonely",member="{f.url}"}}'
t.ok(wait_until(lambda: metric(flabel) == 0, 5), "the only member of a pool goes down")
st, body = call("GET", "/lonely/x")
t.ok(st == 503 and body["error"]["code"] == "no_healthy_upstream",
     "every member down: 503 no_healthy_upstream in the error shape", (st, body))
f.sick = False
t.ok(wait_until(lambda: call("GET", "/lonely/x")[0] == 200, 5), "and it serves again when up")

# Passive ejection: two failures in a row take the dead member out (retries=0 shows them).
eject = [call("GET", "/eject/x")[0] for _ in range(14)]
t.ok(eject[:4] == [502, 200, 502, 200] and eject[4:] == [200] * 10,
     "ejected after eject_after=2 failures: every later request reaches the live member", eject)
elabel = f'{{pool="eject",member="{dead}"}}'
t.ok(metric("strata_gateway_upstream_ejections_total" + elabel) == 1 and
     metric("strata_gateway_upstream_healthy" + elabel) == 0 and
     metric(f'strata_gateway_upstream_healthy{{pool="eject",member="{g.url}"}}') == 1,
     "ejection counted, its gauge 0, the other member's 1 (never more than 50% out)")
t.ok("ejected for 60000 ms after 2 failures in a row" in gw.output(), "the ejection is logged")

# Retries: GET goes to the other member when the connection is refused; POST does not.
h.reset()
gets = [call("GET", "/retry/x")[0] for _ in range(10)]
t.ok(gets == [200] * 10 and h.count("GET") == 10, "GET: refused connections retried", gets)
posts = [call("POST", "/retry/x", body=b"{}")[0] for _ in range(10)]
t.ok(tally(posts) == {502: 5, 200: 5} and h.count("POST") == 5,
     "POST: not retried (the refused half answers 502)", posts)
t.ok(metric('strata_gateway_upstream_retries_total{pool="retry"}') == 5,
     "retries counted in strata_gateway_upstream_retries_total",
     metric('strata_gateway_upstream_retries_total{pool="retry"}'))

i.reset()
gets = [call("GET", "/reset/x")[0] for _ in range(6)]
t.ok(gets == [200] * 6 and i.count("GET") == 6 and resetter.accepted >= 3,
     "GET: a connection closed without an answer is retried", (gets, resetter.accepted))
before = resetter.accepted
puts = [call("DELETE", "/reset/x")[0] for _ in range(4)]
posts = [call("POST", "/reset/x", body=b"{}")[0] for _ in range(6)]
t.ok(puts == [200] * 4 and tally(posts) == {502: 3, 200: 3},
     "DELETE retried, POST not", (puts, posts))

j.failing = True
gets = [call("GET", "/r5xx/x")[0] for _ in range(6)]
t.ok(gets == [200] * 6, "retry_5xx=on: a 503 answer is retried on GET", gets)
posts = [call("POST", "/r5xx/x", body=b"{}")[0] for _ in range(6)]
t.ok(tally(posts) == {503: 3, 200: 3}, "but not on POST: the upstream's 503 comes back", posts)
gets = [call("GET", "/n5xx/x")[0] for _ in range(6)]
t.ok(tally(gets) == {503: 3, 200: 3}, "without retry_5xx a 503 answer comes back", gets)
j.failing = False

# The budget: retry_budget=0 leaves retry_min_per_s=1 a second.
t0 = time.monotonic()
gets = [call("GET", "/budget/x")[0] for _ in range(10)]
took = time.monotonic() - t0
# At most one retry in each second the loop touched.
t.ok(tally(gets).get(502, 0) >= 5 - (int(took) + 2) and tally(gets).get(502, 0) < 5 and
     metric('strata_gateway_upstream_retries_total{pool="budget"}') <= int(took) + 2,
     "the retry budget stops retries past retry_min_per_s", (gets, took))

# A reload without health= replaces the proxy: the old one's checks stop.
n0 = e.health_checks
t.ok(wait_until(lambda: e.health_checks > n0, 3), "checks run before the reload")
config([p.split(" health=")[0] for p in pools])
gw.signal(signal.SIGHUP)
t.ok(wait_until(lambda: "previous routes released" in gw.output(), 5),
     "the reload releases the old proxy", gw.output()[-1500:])
time.sleep(0.3)
n1 = e.health_checks
time.sleep(0.6)
t.ok(e.health_checks == n1, "no health checks after it is gone", (n1, e.health_checks))
t.ok(call("GET", "/health/x")[0] == 200, "the new proxy serves the pool")

rc, _ = gw.stop()
t.ok(rc == 0, "gatewayd stops cleanly", gw.output()[-2000:])
for u in ups.values():
    u.server.shutdown()
resetter.sock.close()
t.done()
