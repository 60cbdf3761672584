#!/usr/bin/env python3
"""API keys checked at strata-gatewayd ([auth] api_key_verifier): a real strata-metad checks
them (POST /v1/meta/keys/verify, for local callers only), an HTTP server of the test records
what goes upstream. A valid key becomes X-Strata-Caller user=; key=; scopes= (the key is not
passed up), a wrong secret, an unknown or a revoked key get 401, route scopes= apply to keys,
answers are remembered api_key_cache_seconds (refusals too), revocation reaches the gateway
after that time and metad at once, rate_key=api_key keys by key id, a forged X-Strata-Caller
is still dropped, and metad down means 503 for keys it has not answered."""

import http.client
import http.server
import json
import os
import time

from harness import (Daemon, Tap, UnixHTTPConnection, free_port, metad_auth, serve_unix,
                     tempdir, write_config)

t = Tap()
d = tempdir()
rundir = os.path.join(d, "run")
CACHE = 3  # api_key_cache_seconds of the gateway


class Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        out = json.dumps({"path": self.path, "headers": {k.lower(): v for k, v in
                                                         self.headers.items()},
                          "callers": self.headers.get_all("X-Strata-Caller") or []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = answer


echo = serve_unix(os.path.join(d, "echo.sock"), Echo)
mconf = write_config(os.path.join(d, "metad.conf"), "metad", rundir, d, metad_auth(d))
metad = Daemon("metad", mconf, rundir)
t.ok(metad.wait_ready(), "metad starts", metad.output())

port = free_port()
routes = ["/echo pool=echo auth=required", "/open pool=echo auth=none",
          "/writers pool=echo auth=required scopes=files:write",
          "/readers pool=echo auth=required scopes=files:read",
          "/keyed pool=echo auth=required rate=1/m rate_key=api_key",
          "/v1 pool=metad auth=optional"]
extra = (f'[public]\nlisten = ["127.0.0.1:{port}"]\nweb_root = "{d}"\n'
         f'[proxy]\npools = {json.dumps([f"echo unix:{d}/echo.sock", f"metad unix:{metad.sock}"])}'
         f'\nroutes = {json.dumps(routes)}\n'
         f'[auth]\napi_key_verifier = "unix:{metad.sock}"\napi_key_cache_seconds = {CACHE}\n')
gconf = write_config(os.path.join(d, "gatewayd.conf"), "gatewayd", os.path.join(d, "gw"), d,
                     extra)
gw = Daemon("gatewayd", gconf, os.path.join(d, "gw"))
t.ok(gw.wait_ready(), "gatewayd starts with api_key_verifier", gw.output())


def answer(r):
    data = r.read()
    try:
        j = json.loads(data) if data else None
    except ValueError:
        j = None
    return r.status, {k.lower(): v for k, v in r.getheaders()}, j, data


def call(method, path, key=None, headers=None, body=None):
    h = dict(headers or {})
    if key:
        h["Authorization"] = "Bearer " + key
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        c.request(method, path, body=body, headers=h)
        return answer(c.getresponse())
    finally:
        c.close()


def local(method, path, body=None, headers=None):
    """Straight to metad's socket."""
    h = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    c = UnixHTTPConnection(metad.sock, timeout=20)
    try:
        c.request(method, path, body=data, headers=h)
        return answer(c.getresponse())
    finally:
        c.close()


def code(j):
    try:
        return j["error"]["code"] if isinstance(j["error"]["message"], str) else None
    except (TypeError, KeyError):
        return None


st, _, alice, _ = local("POST", "/v1/users", {"name": "alice", "email": "a@example.org",
                                              "password": "correct horse"})
t.ok(st == 201, "a user", alice)
A = alice["id"]
me = {"X-Strata-Caller": f"user={A}"}


def new_key(scopes):
    st, _, j, _ = local("POST", "/v1/keys", {"name": "k", "scopes": scopes}, me)
    if st != 201:
        raise RuntimeError(f"key: {st} {j}")
    return j


rw, ro, doomed, spare = (new_key(["files:read", "files:write"]), new_key(["files:read"]),
                         new_key(["files:read"]), new_key(["files:read"]))

# --- metad's endpoint -----------------------------------------------------------------------
st, _, j, _ = local("POST", "/v1/meta/keys/verify",
                    headers={"Authorization": "Bearer " + rw["token"]})
t.ok(st == 200 and j == {"user": A, "key": rw["id"], "scopes": ["files:read", "files:write"]},
     "metad's POST /v1/meta/keys/verify: the key's user, id and scopes", (st, j))
st, _, j, _ = local("POST", "/v1/meta/keys/verify",
                    headers={"Authorization": "Bearer " + rw["token"], **me})
t.ok(st == 403, "... refused with X-Strata-Caller (what the gateway proxies)", (st, j))
wrong = rw["token"][:-3] + ("AAA" if not rw["token"].endswith("AAA") else "BBB")
for what, tok in [("a wrong secret", wrong), ("an unknown id", "sk_" + "f" * 16 + wrong[19:]),
                  ("a malformed key", "sk_nope")]:
    st, _, j, _ = local("POST", "/v1/meta/keys/verify", headers={"Authorization": "Bearer " + tok})
    t.ok(st == 401 and code(j) == "invalid_token", f"... {what}: 401", (st, j))
st, _, j, _ = local("POST", "/v1/meta/keys/verify")
t.ok(st == 400, "... no key: 400", (st, j))
st, _, j, _ = call("POST", "/v1/meta/keys/verify", rw["token"])
t.ok(st == 403, "... through the gateway (even on a route that publishes it): 403", (st, j))
st, _, j, _ = call("POST", "/v1/meta/keys/verify", headers={"Authorization": "Bearer " + "x"})
t.ok(st in (401, 403), "... through the gateway with junk: refused", (st, j))

# --- identity upstream ----------------------------------------------------------------------
caller_rw = f"user={A}; key={rw['id']}; scopes=files:read,files:write"
st, _, j, _ = call("GET", "/echo/who", rw["token"])
t.ok(st == 200 and j["callers"] == [caller_rw] and "authorization" not in j["headers"],
     "a valid key: its identity upstream, the key not passed", (st, j))
st, _, j, _ = call("GET", "/echo/who", rw["token"], {"X-Strata-Caller": f"user={A}; key=1"})
t.ok(st == 200 and j["callers"] == [caller_rw], "a forged X-Strata-Caller with a key: dropped",
     (st, j))
st, _, j, _ = call("GET", "/echo/who", headers={"X-Strata-Caller": caller_rw})
t.ok(st == 401 and code(j) == "unauthenticated", "a forged X-Strata-Caller alone: 401", (st, j))
st, _, j, _ = call("GET", "/open/who", ro["token"])
t.ok(st == 200 and j["callers"] == ["anonymous"] and
     j["headers"].get("authorization") == "Bearer " + ro["token"],
     "auth=none: the key passes on untouched, unverified", (st, j))
st, _, j, _ = call("GET", "/v1/users/me", ro["token"])
t.ok(st == 200 and j["id"] == A, "metad takes the key= form of X-Strata-Caller", (st, j))
st, _, j, _ = call("POST", "/v1/folders", ro["token"],
                   {"Content-Type": "application/json"},
                   json.dumps({"parent": alice["root"], "name": "x"}))
t.ok(st == 403 and code(j) == "insufficient_scope",
     "metad checks the scopes of the key= form: a read-only key cannot write", (st, j))

for what, tok in [("a wrong secret", wrong), ("an unknown id", "sk_" + "f" * 16 + wrong[19:]),
                  ("a malformed key", "sk_notakey")]:
    st, _, j, _ = call("GET", "/echo/who", tok)
    t.ok(st == 401 and code(j) == "invalid_token", f"{what}: 401 at the gateway", (st, j))

# --- scopes= ------------------------------------------------------------------------------
st, _, j, _ = call("GET", "/writers", rw["token"])
t.ok(st == 200, "scopes=files:write: a key with it passes", (st, j))
st, _, j, _ = call("GET", "/writers", ro["token"])
t.ok(st == 403 and code(j) == "insufficient_scope", "scopes=files:write: a read-only key 403",
     (st, j))
st, _, j, _ = call("GET", "/readers", ro["token"])
t.ok(st == 200, "scopes=files:read: the read-only key passes", (st, j))

# --- rate_key=api_key ----------------------------------------------------------------------
s1 = call("GET", "/keyed", rw["token"])[0]
s2 = call("GET", "/keyed", rw["token"])[0]
s3 = call("GET", "/keyed", ro["token"])[0]
t.ok((s1, s2, s3) == (200, 429, 200), "rate_key=api_key: a bucket per key", (s1, s2, s3))

# --- revocation ----------------------------------------------------------------------------
st = call("GET", "/echo/who", doomed["token"])[0]
t.ok(st == 200, "a key about to be revoked works", st)
st, _, _, _ = local("DELETE", f"/v1/keys/{doomed['id']}", headers=me)
t.ok(st == 204, "revoked on metad", st)
st, _, j, _ = call("GET", "/v1/users/me", doomed["token"])
t.ok(st == 401, "metad refuses the revoked key at once, though the gateway remembers it",
     (st, j))
early = call("GET", "/echo/who", doomed["token"])[0]
time.sleep(CACHE + 0.5)
st, _, j, _ = call("GET", "/echo/who", doomed["token"])
t.ok(early == 200 and st == 401 and code(j) == "invalid_token",
     f"the gateway refuses it after api_key_cache_seconds ({CACHE} s): remembered, then 401",
     (early, st, j))

# --- metad down ----------------------------------------------------------------------------
call("GET", "/echo/who", rw["token"])  # fresh answers for these two
call("GET", "/echo/who", wrong)
primed = time.monotonic()
rc, _ = metad.stop()
t.ok(rc == 0, "metad stops")
good = call("GET", "/echo/who", rw["token"])[0]
bad = call("GET", "/echo/who", wrong)[0]
in_time = time.monotonic() - primed < CACHE - 0.5
t.ok(not in_time or (good, bad) == (200, 401),
     "metad down: remembered answers stand, the identity and the refusal", (good, bad))
st, h, j, _ = call("GET", "/echo/who", spare["token"])
t.ok(st == 503 and code(j) == "auth_unavailable",
     "metad down: a key it has not answered gets 503 auth_unavailable", (st, j))
time.sleep(CACHE + 0.5)
st, _, j, _ = call("GET", "/echo/who", rw["token"])
t.ok(st == 503 and code(j) == "auth_unavailable", "... and so does every key once forgotten",
     (st, j))
metad = Daemon("metad", mconf, rundir)
t.ok(metad.wait_ready(), "metad starts again", metad.output())
st, _, j, _ = call("GET", "/echo/who", spare["token"])
t.ok(st == 200 and j["callers"] == [f"user={A}; key={spare['id']}; scopes=files:read"],
     "metad back: the key refused with 503 a moment ago works (a 503 is not remembered)",
     (st, j))
t.ok(metad.stop()[0] == 0, "metad stops cleanly")

rc, _ = gw.stop()
t.ok(rc == 0, "gatewayd stops cleanly", gw.output()[-2000:])
echo.shutdown()
t.done()
