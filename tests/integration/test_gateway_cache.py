#!/usr/bin/env python3
"""gatewayd's response cache (routes with cache=on) against a real upstream that counts what
reaches it: hits and misses, max-age expiry, revalidation with 304, Vary, what is never
stored or shared (no-store, private, Set-Cookie, answers to Authorization), oversized answers
passed through, concurrent misses coalesced into one upstream request, invalidation by POST,
the client's own Cache-Control, metrics, and a reload starting with an empty cache."""

import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import signal
import socketserver
import subprocess
import threading
import time

from harness import Daemon, Tap, UnixHTTPConnection, binary, free_port, tempdir, wait_until, \
    write_config

t = Tap()
d = tempdir()
rundir = os.path.join(d, "run")

hits = {}       # path (without query) -> requests that reached the upstream
not_mod = {}    # path -> 304s the upstream answered
lock = threading.Lock()


class Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        path = self.path.split("?")[0]
        with lock:
            hits[path] = hits.get(path, 0) + 1
            count = hits[path]
        if path == "/c/slow":
            time.sleep(0.6)
        headers = {"Content-Type": "application/json"}
        cc = {"/c/fresh": "max-age=60", "/c/short": "max-age=2", "/c/etag": "max-age=3",
              "/c/vary": "max-age=60", "/c/nostore": "no-store, max-age=60",
              "/c/private": "private, max-age=60", "/c/cookie": "max-age=60",
              "/c/auth": "max-age=60", "/c/authpublic": "public, max-age=60",
              "/c/big": "max-age=60", "/c/slow": "max-age=60", "/c/inval": "max-age=60",
              "/c/query": "max-age=60", "/c/star": "max-age=60", "/plain/x": "max-age=60",
              "/c/lm": "max-age=0", "/c/me": "max-age=60",
              "/c/mepublic": "public, max-age=60"}.get(path)
        if cc:
            headers["Cache-Control"] = cc
        if path == "/c/etag":
            headers["ETag"] = '"v1"'
            if self.headers.get("If-None-Match") == '"v1"':
                with lock:
                    not_mod[path] = not_mod.get(path, 0) + 1
                self.send_response(304)
                headers.pop("Content-Type")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        if path == "/c/lm":
            headers["Last-Modified"] = "Sun, 06 Nov 1994 08:49:37 GMT"
            if self.headers.get("If-Modified-Since") == headers["Last-Modified"]:
                with lock:
                    not_mod[path] = not_mod.get(path, 0) + 1
                self.send_response(304)
                self.send_header("Cache-Control", "max-age=0")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        if path == "/c/vary":
            headers["Vary"] = "Accept-Language"
        if path == "/c/mepublic":
            headers["Vary"] = "X-Strata-Caller"
        if path == "/c/star":
            headers["Vary"] = "*"
        if path == "/c/cookie":
            headers["Set-Cookie"] = "sid=%d" % count
        body = {"path": self.path, "n": count, "method": self.command,
                "lang": self.headers.get("Accept-Language"),
                "authorization": self.headers.get("Authorization"),
                "caller": self.headers.get("X-Strata-Caller")}
        if path == "/c/big":
            body["pad"] = "x" * 4000
        out = json.dumps(body).encode()
        self.send_response(200 if self.command != "POST" else 201)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = answer


class TCPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


up = TCPServer(("127.0.0.1", 0), Upstream)
threading.Thread(target=up.serve_forever, daemon=True).start()
up_target = f"http://127.0.0.1:{up.server_address[1]}"

port = free_port()

# JWTs verified at the gateway: the identity goes upstream in X-Strata-Caller.
jwt_secret = os.urandom(32)


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


with open(os.path.join(d, "jwks.json"), "w") as f:
    json.dump({"keys": [{"kty": "oct", "kid": "k1", "alg": "HS256", "k": b64u(jwt_secret)}]}, f)


def jwt(sub):
    head = b64u(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    body = b64u(json.dumps({"sub": sub, "exp": int(time.time()) + 600}).encode())
    sig = hmac.new(jwt_secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64u(sig)}"



def config(max_object):
    pools = [f"up {up_target}"]
    routes = ["/c pool=up cache=on", "/plain pool=up"]
    return (f'[public]\nlisten = ["127.0.0.1:{port}"]\nweb_root = "{d}"\n'
            f'[proxy]\npools = {json.dumps(pools)}\nroutes = {json.dumps(routes)}\n'
            f'[cache]\nmax_bytes = 1048576\nmax_object_bytes = {max_object}\n'
            '[auth]\napi_key_verifier = ""\n'
            f'jwks_file = "{d}/jwks.json"\n')


conf = write_config(os.path.join(d, "gatewayd.conf"), "gatewayd", rundir, d, config(1024))
gw = Daemon("gatewayd", conf, rundir)
t.ok(gw.wait_ready(), "gatewayd starts", gw.output())


def call(method, path, headers=None, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()
    try:
        j = json.loads(data) if data else None
    except ValueError:
        j = None
    return r.status, hdrs, j


def n(path):
    with lock:
        return hits.get(path, 0)


# A fresh answer is served without the upstream, with Age and X-Cache: HIT.
s1, h1, j1 = call("GET", "/c/fresh")
s2, h2, j2 = call("GET", "/c/fresh")
t.ok(s1 == 200 and h1.get("x-cache") == "MISS", "first GET is a miss", (s1, h1))
t.ok(s2 == 200 and h2.get("x-cache") == "HIT" and j2 == j1 and n("/c/fresh") == 1,
     "second GET is a hit: the upstream saw one request", (h2, j2, n("/c/fresh")))
t.ok(h2.get("age", "").isdigit() and int(h2["age"]) < 60, "a hit says its Age", h2)
t.ok(h2.get("x-request-id") and h2["x-request-id"] != h1.get("x-request-id"),
     "a hit carries its own request id", (h1.get("x-request-id"), h2.get("x-request-id")))
s, h, _ = call("HEAD", "/c/fresh")
t.ok(s == 200 and h.get("x-cache") == "HIT" and n("/c/fresh") == 1 and
     h.get("content-length") == h2.get("content-length"),
     "HEAD is answered from the stored GET", (s, h))

# The query is part of the key.
call("GET", "/c/query?a=1")
call("GET", "/c/query?a=2")
_, h, j = call("GET", "/c/query?a=1")
t.ok(n("/c/query") == 2 and h.get("x-cache") == "HIT" and j["path"] == "/c/query?a=1",
     "different queries are different entries", (n("/c/query"), j))

# max-age expiry: without a validator a stale answer is fetched again.
call("GET", "/c/short")
_, h, _ = call("GET", "/c/short")
t.ok(h.get("x-cache") == "HIT" and n("/c/short") == 1, "max-age=2: a hit at once", h)
time.sleep(2.5)
_, h, j = call("GET", "/c/short")
t.ok(h.get("x-cache") == "STALE" and n("/c/short") == 2 and j["n"] == 2,
     "past max-age it goes upstream again", (h, n("/c/short")))

# Revalidation: a stale answer with an ETag is checked with If-None-Match; 304 refreshes it.
_, h, first = call("GET", "/c/etag")
time.sleep(3.5)
s, h, j = call("GET", "/c/etag")
t.ok(s == 200 and h.get("x-cache") == "REVALIDATED" and j == first and
     not_mod.get("/c/etag") == 1 and n("/c/etag") == 2,
     "a stale answer with an ETag is revalidated: the upstream's 304 serves the stored body",
     (s, h, j, not_mod))
_, h, _ = call("GET", "/c/etag")
t.ok(h.get("x-cache") == "HIT" and n("/c/etag") == 2, "the 304 made it fresh again", h)
s, h, j = call("GET", "/c/etag", {"If-None-Match": 'W/"v0", "v1"'})
t.ok(s == 304 and h.get("x-cache") == "HIT" and h.get("etag") == '"v1"' and n("/c/etag") == 2,
     "the client's matching If-None-Match gets 304 from the cache", (s, h))
s, h, j = call("GET", "/c/etag", {"If-None-Match": '"other"'})
t.ok(s == 200 and j == first and n("/c/etag") == 2, "a non-matching one gets the answer", (s, h))

# Last-Modified only: revalidated with If-Modified-Since (max-age=0: every time).
call("GET", "/c/lm")
s, h, j = call("GET", "/c/lm")
t.ok(s == 200 and h.get("x-cache") == "REVALIDATED" and not_mod.get("/c/lm") == 1 and
     j["n"] == 1, "Last-Modified answers are revalidated with If-Modified-Since", (s, h, not_mod))

# Client directives: no-cache forces a revalidation, no-store bypasses, only-if-cached.
s, h, _ = call("GET", "/c/etag", {"Cache-Control": "no-cache"})
t.ok(s == 200 and h.get("x-cache") == "REVALIDATED" and not_mod["/c/etag"] == 2,
     "Cache-Control: no-cache from the client revalidates a fresh answer", (h, not_mod))
before = n("/c/fresh")
s, h, _ = call("GET", "/c/fresh", {"Cache-Control": "no-store"})
t.ok(s == 200 and h.get("x-cache") == "BYPASS" and n("/c/fresh") == before + 1,
     "Cache-Control: no-store from the client bypasses the cache", h)
s, h, j = call("GET", "/c/unseen", {"Cache-Control": "only-if-cached"})
t.ok(s == 504 and j["error"]["code"] == "gateway_timeout" and n("/c/unseen") == 0,
     "only-if-cached without a stored answer: 504, the upstream untouched", (s, j))
s, h, _ = call("GET", "/c/fresh", {"Cache-Control": "max-age=0"})
t.ok(h.get("x-cache") == "STALE" and n("/c/fresh") == before + 2,
     "max-age=0 from the client wants a new answer", h)

# Vary: one entry per Accept-Language value.
_, h_en, en = call("GET", "/c/vary", {"Accept-Language": "en"})
_, h_fr, fr = call("GET", "/c/vary", {"Accept-Language": "fr"})
_, h_en2, en2 = call("GET", "/c/vary", {"Accept-Language": "en"})
_, h_fr2, fr2 = call("GET", "/c/vary", {"Accept-Language": "fr"})
_, h_none, none = call("GET", "/c/vary")
t.ok(en2 == en and fr2 == fr and en["lang"] == "en" and fr["lang"] == "fr" and
     h_en2.get("x-cache") == "HIT" and h_fr2.get("x-cache") == "HIT",
     "Vary: each Accept-Language gets its own stored answer", (en, fr, en2, fr2))
t.ok(h_none.get("x-cache") == "MISS" and none["lang"] is None and n("/c/vary") == 3,
     "no Accept-Language is a value of its own", (h_none, none))
call("GET", "/c/star")
_, h, _ = call("GET", "/c/star")
t.ok(h.get("x-cache") == "MISS" and n("/c/star") == 2, "Vary: * is never stored", h)

# Never stored: no-store, private, Set-Cookie.
for path in ("/c/nostore", "/c/private", "/c/cookie"):
    _, h1, j1 = call("GET", path)
    _, h2, j2 = call("GET", path)
    t.ok(n(path) == 2 and j2["n"] == 2 and h2.get("x-cache") == "MISS",
         f"{path} is not stored", (h2, n(path)))
_, h, _ = call("GET", "/c/cookie")
t.ok(h.get("set-cookie") == "sid=3", "one client's Set-Cookie never goes to another", h)

# Answers to Authorization are shared only when they say public (or s-maxage).
alice = {"Authorization": "Basic YWxpY2U6cA=="}
bob = {"Authorization": "Basic Ym9iOnA="}
_, _, a1 = call("GET", "/c/auth", alice)
_, hb, b1 = call("GET", "/c/auth", bob)
_, ha, anon = call("GET", "/c/auth")
t.ok(a1["authorization"] == alice["Authorization"] and b1["authorization"] == bob["Authorization"]
     and anon["authorization"] is None and n("/c/auth") == 3 and hb.get("x-cache") == "MISS",
     "an answer to Authorization without public is not stored: nobody gets alice's", (a1, b1, anon))
_, h, anon2 = call("GET", "/c/auth")
t.ok(h.get("x-cache") == "HIT" and anon2 == anon and n("/c/auth") == 3,
     "the anonymous answer is stored", h)
_, h, b2 = call("GET", "/c/auth", bob)
t.ok(b2 == anon and n("/c/auth") == 3,
     "a public-by-default anonymous answer may be served to a caller with credentials", b2)
call("GET", "/c/authpublic", alice)
_, h, j = call("GET", "/c/authpublic")
t.ok(h.get("x-cache") == "HIT" and n("/c/authpublic") == 1,
     "an answer to Authorization that says public is stored", (h, j))

# Verified identities: the answer to one caller is never served to another, unless it says
# public; Vary: X-Strata-Caller keeps a public answer per caller.
ja = {"Authorization": "Bearer " + jwt("alice")}
jb = {"Authorization": "Bearer " + jwt("bob")}
_, _, me_a = call("GET", "/c/me", ja)
_, h, me_b = call("GET", "/c/me", jb)
_, h2, me_a2 = call("GET", "/c/me", ja)
t.ok("sub=alice" in me_a["caller"] and "sub=bob" in me_b["caller"] and
     "sub=alice" in me_a2["caller"] and n("/c/me") == 3 and h.get("x-cache") == "MISS" and
     me_a["authorization"] is None,
     "answers to verified callers without public are not stored", (me_a, me_b, me_a2))
_, h, anon = call("GET", "/c/me")
t.ok(anon["caller"] == "anonymous" and h.get("x-cache") == "MISS" and n("/c/me") == 4,
     "nor served to anonymous callers", (h, anon))
call("GET", "/c/mepublic", ja)
_, ha, pa = call("GET", "/c/mepublic", ja)
_, hb, pb = call("GET", "/c/mepublic", jb)
_, hb2, pb2 = call("GET", "/c/mepublic", jb)
_, hn, pn = call("GET", "/c/mepublic")
t.ok(ha.get("x-cache") == "HIT" and "sub=alice" in pa["caller"] and
     hb.get("x-cache") == "MISS" and "sub=bob" in pb["caller"] and
     hb2.get("x-cache") == "HIT" and pb2 == pb and
     hn.get("x-cache") == "MISS" and pn["caller"] == "anonymous" and n("/c/mepublic") == 3,
     "public with Vary: X-Strata-Caller: one stored answer per verified caller",
     (ha, pa, hb, pb, hn, pn))

# Bodies over max_object_bytes are passed through, never stored.
_, h1, j1 = call("GET", "/c/big")
_, h2, j2 = call("GET", "/c/big")
t.ok(len(j2["pad"]) == 4000 and n("/c/big") == 2 and h2.get("x-cache") == "MISS",
     "an answer over max_object_bytes is passed through, not stored", (h2, n("/c/big")))

# Coalescing: concurrent misses of one key wait for one upstream answer.
results = []
rlock = threading.Lock()


def fetch_slow():
    try:
        r = call("GET", "/c/slow")
    except Exception as e:  # noqa: BLE001 - reported below
        r = (0, {}, str(e))
    with rlock:
        results.append(r)


threads = [threading.Thread(target=fetch_slow) for _ in range(8)]
for th in threads:
    th.start()
for th in threads:
    th.join(20)
t.ok(len(results) == 8 and all(r[0] == 200 and r[2]["n"] == 1 for r in results) and
     n("/c/slow") == 1, "8 concurrent GETs of one key: one upstream request",
     (n("/c/slow"), [(r[0], r[1].get("x-cache")) for r in results]))
t.ok(sorted(r[1].get("x-cache") for r in results) == ["HIT"] * 7 + ["MISS"],
     "one miss, the others served from its answer", [r[1].get("x-cache") for r in results])

# Invalidation by unsafe methods on the path.
call("GET", "/c/inval?q=1")
call("GET", "/c/inval")
_, h, _ = call("GET", "/c/inval")
t.ok(h.get("x-cache") == "HIT" and n("/c/inval") == 2, "stored before the POST", h)
s, _, _ = call("POST", "/c/inval", body=b"{}")
t.ok(s == 201 and n("/c/inval") == 3, "the POST goes upstream", s)
_, h1, _ = call("GET", "/c/inval")
_, h2, _ = call("GET", "/c/inval?q=1")
t.ok(h1.get("x-cache") == "MISS" and h2.get("x-cache") == "MISS" and n("/c/inval") == 5,
     "a POST drops the path's stored answers, every query", (h1, h2))
call("DELETE", "/c/inval")
_, h, _ = call("GET", "/c/inval")
t.ok(h.get("x-cache") == "MISS" and n("/c/inval") == 7, "DELETE too", h)

# A route without cache=on is untouched.
call("GET", "/plain/x")
_, h, _ = call("GET", "/plain/x")
t.ok("x-cache" not in h and n("/plain/x") == 2, "routes without cache=on do not cache", h)

# Metrics.
mc = UnixHTTPConnection(gw.sock, timeout=10)
mc.request("GET", "/metrics")
text = mc.getresponse().read().decode()
mc.close()
lines = [l for l in text.splitlines() if l.startswith("strata_gateway_cache")]
want = ['strata_gateway_cache_requests_total{route="/c",result="%s"}' % r
        for r in ("hit", "miss", "stale", "revalidated", "bypass")]
gauge = [l for l in lines if l.startswith("strata_gateway_cache_bytes ")]
t.ok(all(any(l.startswith(w + " ") for l in lines) for w in want) and gauge and
     float(gauge[0].split()[1]) > 0, "cache metrics by route and result, bytes held", lines)

# --check-config refuses a bad cache= value.
bad = os.path.join(d, "bad.conf")
with open(bad, "w") as f:
    f.write(open(conf).read().replace("cache=on", "cache=maybe"))
r = subprocess.run([binary("gatewayd"), "--config", bad, "--check-config"],
                   capture_output=True, text=True, timeout=10)
t.ok(r.returncode != 0 and "cache is on or off" in r.stderr, "cache=maybe is refused", r.stderr)

# A reload starts with an empty cache (and takes the new max_object_bytes).
write_config(conf, "gatewayd", rundir, d, config(8192))
gw.signal(signal.SIGHUP)


def reloaded():
    _, h, _ = call("GET", "/c/fresh")
    return h.get("x-cache") == "MISS"


t.ok(wait_until(reloaded, timeout=10, step=0.2), "after a reload the cache is empty", gw.output())
call("GET", "/c/big")
_, h, _ = call("GET", "/c/big")
t.ok(h.get("x-cache") == "HIT", "the reloaded max_object_bytes applies", h)

rc, _ = gw.stop()
t.ok(rc == 0, "gatewayd stops cleanly", gw.output())
up.shutdown()
t.done()
