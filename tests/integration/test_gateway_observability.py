#!/usr/bin/env python3
"""gatewayd's access log, request ids and hot reload against real upstreams (HTTP servers of
the test on TCP): one valid JSON line per answered request (proxied ones, the gateway's own
refusals, static files, /healthz), X-Request-Id on every answer, SIGHUP swapping routes while
a slow request in flight completes, a broken config rejected with the old routes serving,
and the log file reopened after logrotate's rename."""

import http.client
import http.server
import json
import os
import re
import signal
import socket
import socketserver
import threading
import time

from harness import Daemon, Tap, free_port, request, tempdir, wait_until, write_config

t = Tap()
d = tempdir()
rundir = os.path.join(d, "run")
log_path = os.path.join(d, "access.log")


def upstream(name):
    class Echo(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def answer(self):
            n = int(self.headers.get("Content-Length") or 0)
            if n:
                self.rfile.read(n)
            if "/slow" in self.path:
                time.sleep(2)  # in flight across the reload
            out = json.dumps({"upstream": name, "path": self.path,
                              "request_id": self.headers.get("X-Request-Id")}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_DELETE = answer

    return Echo


class TCPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


ups = {}
for name in ("a", "b"):
    s = TCPServer(("127.0.0.1", 0), upstream(name))
    threading.Thread(target=s.serve_forever, daemon=True).start()
    ups[name] = f"http://127.0.0.1:{s.server_address[1]}"

web = os.path.join(d, "web")
os.makedirs(web)
with open(os.path.join(web, "index.html"), "w") as f:
    f.write("<p>hello</p>\n")

port = free_port()
dead = os.path.join(d, "nobody.sock")
conf_path = os.path.join(d, "gatewayd.conf")


def config(routes, pools=None):
    pools = pools or [f"a {ups['a']}", f"b {ups['b']}", f"dead unix:{dead}"]
    extra = (f'[log]\naccess = "{log_path}"\n'
             f'[public]\nlisten = ["127.0.0.1:{port}"]\nweb_root = "{web}"\n'
             'deny = ["127.0.0.3"]\n'
             f'[proxy]\npools = {json.dumps(pools)}\nroutes = {json.dumps(routes)}\n'
             # the key is passed on unchecked: the log must name it without its secret
             '[auth]\napi_key_verifier = ""\n')
    write_config(conf_path, "gatewayd", rundir, d, extra)


routes1 = ["/api pool=a", "/secret pool=a auth=required", "/only-get pool=a methods=GET",
           "/small pool=a max_body=5", "/limited pool=a rate=1/m", "/gone pool=dead"]
config(routes1)
gw = Daemon("gatewayd", conf_path, rundir)
t.ok(gw.wait_ready(), "gatewayd starts with a file access log", gw.output())


def call(method, path, body=None, headers=None, source="127.0.0.1"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def log_lines(path=log_path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def by_id(path=log_path):
    out = {}
    for line in log_lines(path):
        j = json.loads(line)
        out[j["request_id"]] = j
    return out


def metric_line(prefix):
    _, _, body = request(gw.sock, "GET", "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(prefix):
            return float(line.split(" ")[-1])
    return 0.0


# Every kind of answer, each with an id of the test's own (kept: it is valid).
odd_path = '/api/we%22ird%20path/%C3%A9?q="x"&y=%00\\'
odd_agent = 'bot "q" \\ {"x": 1} ü'  # UTF-8 on the wire
cases = [
    # id, method, path, body, extra headers, source, status, upstream, route
    ("proxied", "GET", "/api/x?y=1&z", None, {}, "127.0.0.1", 200, "a", "/api"),
    ("odd", "GET", odd_path, None, {"User-Agent": odd_agent.encode()}, "127.0.0.1", 200,
     "a", "/api"),
    ("unauth", "GET", "/secret/x", None, {}, "127.0.0.1", 401, "gateway", "/secret"),
    ("apikey", "GET", "/api/k", None, {"Authorization": "Bearer sk_topsecretvalue"},
     "127.0.0.1", 200, "a", "/api"),
    ("method", "POST", "/only-get", b"", {}, "127.0.0.1", 405, "gateway", "/only-get"),
    ("big", "POST", "/small", b"0123456789", {}, "127.0.0.1", 413, "gateway", "/small"),
    ("limit1", "GET", "/limited", None, {}, "127.0.0.1", 200, "a", "/limited"),
    ("limit2", "GET", "/limited", None, {}, "127.0.0.1", 429, "gateway", "/limited"),
    ("gone", "GET", "/gone", None, {}, "127.0.0.1", 502, "dead", "/gone"),
    ("static", "GET", "/index.html", None, {"Referer": "http://ref.test/"}, "127.0.0.1", 200,
     "gateway", None),
    ("nofile", "GET", "/missing.html", None, {}, "127.0.0.1", 404, "gateway", None),
    ("noroute", "DELETE", "/nothing", None, {}, "127.0.0.1", 404, "gateway", None),
    ("denied", "GET", "/index.html", None, {}, "127.0.0.3", 403, "gateway", None),
    ("health", "GET", "/healthz", None, {}, "127.0.0.1", 200, "gateway", None),
]
answers = {}
for rid, method, path, body, hdrs, src, want, _, _ in cases:
    h = dict(hdrs)
    h["X-Request-Id"] = rid
    st, rh, data = call(method, path, body, h, src)
    answers[rid] = (st, rh, data)
    t.ok(st == want and rh.get("x-request-id") == rid,
         f"{method} {path[:30]}: {want}, the client's X-Request-Id on the answer", (st, rh))
st, rh, data = call("GET", "/api/up", headers={"X-Request-Id": "up-1"})
t.ok(json.loads(data)["request_id"] == "up-1" and rh.get("x-request-id") == "up-1",
     "the upstream gets the same id", data)
st, rh, _ = call("GET", "/secret")
made = rh.get("x-request-id", "")
t.ok(st == 401 and re.fullmatch(r"[0-9a-f]{32}", made), "an own refusal without a client id "
     "gets one made", rh)
st, rh, _ = call("GET", "/nothing.txt", headers={"X-Request-Id": "bad id!"})
t.ok(st == 404 and re.fullmatch(r"[0-9a-f]{32}", rh.get("x-request-id", "")),
     "an invalid client id is replaced on own answers too", rh)

total = len(cases) + 3
t.ok(wait_until(lambda: len(log_lines()) >= total, 5), "one log line per request",
     (len(log_lines()), total))
lines = log_lines()
ok = True
for line in lines:
    try:
        json.loads(line)
    except ValueError:
        ok = False
t.ok(ok and len(lines) == total, "every line is one valid JSON object", lines)
logged = by_id()
time_re = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
for rid, method, path, body, hdrs, src, want, up, route in cases:
    j = logged.get(rid)
    if not j:
        t.ok(False, f"{rid} is logged", logged.keys())
        continue
    st, rh, data = answers[rid]
    good = (j["method"] == method and j["path"] == path and j["status"] == want and
            j["upstream"] == up and j["route"] == route and j["remote"] == src and
            j["host"] == f"127.0.0.1:{port}" and time_re.fullmatch(j["time"]) and
            j["bytes"] == len(data) and isinstance(j["duration_ms"], (int, float)) and
            j["duration_ms"] >= 0)
    t.ok(good, f"{rid}: method, path as sent, status, upstream, route, remote, bytes", j)
j = logged["proxied"]
t.ok(j["upstream_addr"] == ups["a"] and j["upstream_ms"] >= 0 and j["caller"] == "anonymous"
     and j["user"] is None, "a proxied request: the member and its time", j)
t.ok(logged["gone"]["upstream_addr"] == f"unix:{dead}" and logged["unauth"]["upstream_ms"] is None,
     "a failed upstream is named; an own refusal has no upstream time", (logged["gone"],
                                                                         logged["unauth"]))
t.ok(logged.get("odd", {}).get("user_agent") == odd_agent, "odd user agent escaped intact",
     logged.get("odd"))
t.ok(logged["static"]["referer"] == "http://ref.test/" and logged["proxied"]["referer"] is None,
     "referer logged when sent", logged["static"])
t.ok(logged["apikey"]["caller"] == "api_key" and "topsecret" not in "\n".join(lines) and
     "Bearer" not in "\n".join(lines), "the caller kind is logged, never the credential",
     logged["apikey"])
t.ok(metric_line("strata_gateway_access_log_dropped_total") == 0, "no line dropped")


# Requests answered before any route saw them are logged too, as the gateway's own answers.
def raw_once(data):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out
    finally:
        s.close()


before = len(log_lines())
folded = raw_once(b"GET /api/fold HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n X-B: 2\r\n\r\n")
unrouted = raw_once(b"PROPFIND /api/x HTTP/1.1\r\nHost: x\r\nUser-Agent: dav-agent\r\n"
                    b"Connection: close\r\n\r\n")
t.ok(folded.startswith(b"HTTP/1.1 400") and unrouted.startswith(b"HTTP/1.1 405"),
     "control: an obs-fold gets 400, a method no route takes 405", (folded[:80], unrouted[:80]))
t.ok(wait_until(lambda: len(log_lines()) >= before + 2, 5), "both are logged",
     log_lines()[before:])
new = [json.loads(line) for line in log_lines()[before:]]
t.ok(len(new) == 2 and new[0]["status"] == 400 and new[0]["remote"] == "127.0.0.1" and
     new[0]["upstream"] == "gateway" and new[0]["route"] is None and
     re.fullmatch(r"[0-9a-f]{32}", new[0]["request_id"]) and
     new[0]["bytes"] == len(folded.split(b"\r\n\r\n", 1)[1]),
     "a refused head: status, client, bytes, an id of the gateway's own", new)
t.ok(len(new) == 2 and new[1]["method"] == "PROPFIND" and new[1]["path"] == "/api/x" and
     new[1]["status"] == 405 and new[1]["user_agent"] == "dav-agent" and new[1]["host"] == "x",
     "an unrouted method: method, path, status, user agent, host", new)

# Hot reload: /api moves to pool b, /new appears, /limited goes, while a slow request to the
# old /api (pool a) is in flight.
slow = {}


def slow_call():
    try:
        slow["answer"] = call("GET", "/api/slow", headers={"X-Request-Id": "slow-1"})
    except Exception as e:  # noqa: BLE001 - reported below
        slow["error"] = repr(e)


th = threading.Thread(target=slow_call, daemon=True)
th.start()
time.sleep(0.3)  # the slow request is upstream now
routes2 = ["/api pool=b", "/new pool=b", "/secret pool=a auth=required"]
config(routes2)
gw.signal(signal.SIGHUP)
t.ok(wait_until(lambda: call("GET", "/new")[0] == 200, 5), "after SIGHUP the new route answers",
     gw.output())
st, _, data = call("GET", "/api/z")
t.ok(st == 200 and json.loads(data)["upstream"] == "b", "a changed route goes to its new pool",
     data)
t.ok(call("GET", "/limited")[0] == 404, "a removed route is gone")
t.ok("slow-1" not in by_id(), "the slow request is still in flight after the swap")
th.join(10)
sa = slow.get("answer")
t.ok(sa and sa[0] == 200 and json.loads(sa[2])["upstream"] == "a",
     "the request in flight across the reload completes with 200 from the old pool", slow)
t.ok(wait_until(lambda: "previous routes released" in gw.output(), 5),
     "the old routes are released once their last request is answered", gw.output()[-2000:])
t.ok(metric_line('strata_config_reloads_total{result="ok"}') == 1, "one reload ok")
t.ok(wait_until(lambda: by_id().get("slow-1", {}).get("upstream") == "a", 3),
     "the slow request is logged with its old upstream", by_id().get("slow-1"))

# A broken config (a route naming no pool) is refused: SIGHUP and the control socket's reload.
config(routes2 + ["/broken pool=nope"])
gw.signal(signal.SIGHUP)
t.ok(wait_until(lambda: metric_line('strata_config_reloads_total{result="error"}') == 1, 5),
     "a broken config on SIGHUP is rejected", gw.output()[-2000:])
st, _, body = request(gw.sock, "POST", "/v1/reload")
t.ok(st == 422, "and through the reload verb (stratactl reload)", body)
st, _, data = call("GET", "/new")
t.ok(st == 200 and json.loads(data)["upstream"] == "b" and call("GET", "/broken")[0] == 404,
     "the old routes keep serving", data)

# logrotate: rename, then SIGHUP reopens the path.
os.rename(log_path, log_path + ".1")
config(routes2)
gw.signal(signal.SIGHUP)
t.ok(wait_until(lambda: metric_line('strata_config_reloads_total{result="ok"}') == 2, 5),
     "SIGHUP after the rename", gw.output()[-2000:])
call("GET", "/new", headers={"X-Request-Id": "after-rotate"})
t.ok(wait_until(lambda: "after-rotate" in by_id(), 5), "the log file is reopened at its path",
     log_lines())
t.ok("after-rotate" not in by_id(log_path + ".1") and "proxied" in by_id(log_path + ".1"),
     "the renamed file keeps the older lines only")

# Stopping with a request in flight (its proxy is dropped first, the request cancelled).
slow.clear()
th = threading.Thread(target=slow_call, daemon=True)
th.start()
time.sleep(0.3)
rc, _ = gw.stop()
t.ok(rc == 0, "gatewayd stops cleanly with a request in flight", gw.output()[-2000:])
th.join(10)
t.done()
