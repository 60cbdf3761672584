#!/usr/bin/env python3
"""gatewayd's reverse proxy against real upstreams: HTTP servers of the test on a unix socket
and on TCP, and strata-metad itself. Routing (prefix, host, methods, rewrite), what goes up
(re-encoded path and query, forwarded headers, request ids, hop-by-hop and forged identity
headers dropped), balancing, retries, timeouts, limits, and session tokens verified at the
gateway with the identity passed upstream."""

import base64
import gzip
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

from harness import (Daemon, Tap, UnixHTTPConnection, binary, free_port, metad_auth, serve_unix,
                     tempdir, wait_until, write_config)

t = Tap()
d = tempdir()
rundir = os.path.join(d, "run")


def echo_handler(name):
    class Echo(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the gateway's pool expects

        def log_message(self, *args):
            pass

        def answer(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            if self.path.startswith("/slow"):
                time.sleep(2)
            answer = {"upstream": name, "method": self.command, "path": self.path,
                      "headers": {k.lower(): v for k, v in self.headers.items()},
                      "body": body.decode("utf-8", "replace")}
            if "/big" in self.path:  # worth compressing
                answer["pad"] = ["entry %d of a long listing" % i for i in range(200)]
            out = json.dumps(answer).encode()
            self.send_response(201 if self.command == "POST" else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.send_header("Keep-Alive", "timeout=5")   # hop-by-hop: not passed down
            self.send_header("X-Upstream", name)
            self.send_header("Access-Control-Allow-Origin", "*")  # the gateway's CORS wins
            if "/big" in self.path:
                self.send_header("ETag", '"big-1"')
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(out)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = answer

    return Echo


class TCPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


unix_up = serve_unix(os.path.join(d, "u1.sock"), echo_handler("u1"))
tcp_ups = []
for name in ("t1", "t2"):
    s = TCPServer(("127.0.0.1", 0), echo_handler(name))
    threading.Thread(target=s.serve_forever, daemon=True).start()
    tcp_ups.append(s)
t1 = f"http://127.0.0.1:{tcp_ups[0].server_address[1]}"
t2 = f"http://127.0.0.1:{tcp_ups[1].server_address[1]}"

# metad, whose session tokens the gateway verifies with the public key.
mconf = write_config(os.path.join(d, "metad.conf"), "metad", rundir, d, metad_auth(d))
metad = Daemon("metad", mconf, rundir)
t.ok(metad.wait_ready(), "metad starts", metad.output())
pub = subprocess.run([binary("stratactl"), "auth", "public-key", os.path.join(d, "session.key")],
                     capture_output=True, text=True, timeout=10)
t.ok(pub.returncode == 0 and len(pub.stdout.strip()) == 64, "stratactl auth public-key", pub)
with open(os.path.join(d, "session.pub"), "w") as f:
    f.write("# metad's session key\n" + pub.stdout)

# JWTs of an outside identity provider: an HS256 key in a JWK Set.
jwt_secret = os.urandom(32)


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


with open(os.path.join(d, "jwks.json"), "w") as f:
    json.dump({"keys": [{"kty": "oct", "kid": "k1", "alg": "HS256", "k": b64u(jwt_secret)}]}, f)


def jwt(claims, secret=None, header=None):
    head = b64u(json.dumps(header or {"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    body = b64u(json.dumps(claims).encode())
    sig = hmac.new(secret or jwt_secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64u(sig)}"


dead = os.path.join(d, "nobody.sock")
port = free_port()
pools = [f"echo unix:{d}/u1.sock", f"tcp {t1} weight=3 {t2}",
         f"halfdead unix:{dead} unix:{d}/u1.sock", f"dead unix:{dead}",
         f"metad unix:{metad.sock}"]
routes = ["/echo pool=echo", "/app pool=tcp rewrite=/inner methods=GET,HEAD",
          "/echo pool=tcp host=media.test", "/small pool=echo max_body=10",
          "/slow pool=echo timeout_ms=500", "/half pool=halfdead", "/gone pool=dead",
          "/v1 pool=metad", "/private pool=echo auth=required", "/open pool=echo auth=none",
          "/limited pool=echo rate=3/m", "/peruser pool=echo rate=1/m rate_key=user",
          "/filtered pool=echo allow=127.0.0.0/8,::1 deny=127.0.0.2 require_headers=X-Api "
          "forbid_headers=X-Debug headers=sec", "/denied pool=echo deny=127.0.0.0/8,::1",
          "/cors pool=echo cors=web", "/corsauth pool=echo cors=web auth=required",
          "/plain pool=echo compress=off", "/jwt pool=echo auth=required",
          "/writers pool=echo auth=required scopes=files:write",
          "/admins pool=echo auth=required scopes=strata:admin"]
header_rules = ["sec request add X-Added yes please", "sec request rename X-Old X-New",
                "sec request remove X-Drop", "sec response set X-Frame-Options DENY",
                "sec response remove X-Upstream"]
cors = ["web origins=https://app.test,https://*.example.test methods=GET,POST "
        "headers=Authorization,X-Custom expose=X-Request-Id credentials=true max_age=120"]
extra = (f'[public]\nlisten = ["127.0.0.1:{port}"]\nweb_root = "{d}"\ndeny = ["127.0.0.3"]\n'
         f'[proxy]\npools = {json.dumps(pools)}\nroutes = {json.dumps(routes)}\n'
         f'header_rules = {json.dumps(header_rules)}\ncors = {json.dumps(cors)}\n'
         f'[auth]\nsession_public_keys_file = "{d}/session.pub"\njwks_file = "{d}/jwks.json"\n'
         'jwt_issuers = ["https://idp.test"]\njwt_audiences = ["strata"]\n'
         # keys passed on unchecked here; checked at the gateway in test_gateway_api_keys.py
         'api_key_verifier = ""\n'
         f'denied_credentials_file = "{d}/denied.txt"\n')
with open(os.path.join(d, "denied.txt"), "w") as f:
    f.write("# nothing denied yet\n")
conf = write_config(os.path.join(d, "gatewayd.conf"), "gatewayd", rundir, d, extra)
gw = Daemon("gatewayd", conf, rundir)
t.ok(gw.wait_ready(), "gatewayd starts", gw.output())


def call(method, path, body=None, headers=None, conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    if not conn:
        c.close()
    try:
        j = json.loads(data) if data else None
    except ValueError:
        j = None
    return r.status, hdrs, j, data


st, h, j, _ = call("GET", "/echo/a%20b/%C3%A9?x=1&y=%C3%A9+z&flag")
t.ok(st == 200 and j["upstream"] == "u1" and j["path"] == "/echo/a%20b/%C3%A9?x=1&y=%C3%A9+z&flag",
     "a GET goes to the unix upstream: the path encoded again, the query as sent", j)
t.ok(j["headers"].get("x-forwarded-for") == "127.0.0.1" and
     j["headers"].get("x-forwarded-host") == f"127.0.0.1:{port}" and
     j["headers"].get("x-forwarded-proto") == "http", "X-Forwarded-For/Host/Proto", j["headers"])
rid = j["headers"].get("x-request-id", "")
t.ok(len(rid) == 32 and h.get("x-request-id") == rid, "a request id made, sent up and down",
     (rid, h))
t.ok(h.get("x-upstream") == "u1" and "keep-alive" not in h, "upstream headers back, hop-by-hop "
     "ones dropped", h)
st, h, j, _ = call("GET", "/echo", headers={"X-Request-Id": "abc-123.X"})
t.ok(j["headers"]["x-request-id"] == "abc-123.X" and h["x-request-id"] == "abc-123.X",
     "a client's valid request id is kept", (j["headers"], h))
st, h, j, _ = call("GET", "/echo", headers={"X-Request-Id": "bad id\x01"[:6] + "!"})
t.ok(len(j["headers"]["x-request-id"]) == 32, "an invalid one is replaced", j["headers"])
tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
st, h, j, _ = call("GET", "/echo", headers={"traceparent": tp, "tracestate": "v=1"})
up_tp = j["headers"].get("traceparent", "")
t.ok(up_tp.startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-") and up_tp.endswith("-01") and
     up_tp != tp and len(up_tp) == 55 and j["headers"].get("tracestate") == "v=1",
     "traceparent: same trace and flags, the gateway's own parent id", up_tp)
for sent in [None, "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "garbage",
             "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"]:
    st, h, j, _ = call("GET", "/echo", headers={"traceparent": sent} if sent else {})
    got = j["headers"].get("traceparent", "")
    t.ok(len(got) == 55 and got.startswith("00-") and got.endswith("-00") and
         "4bf92f3577b34da6" not in got.lower(), f"traceparent {sent!r}: a new trace", got)
st, h, j, _ = call("GET", "/echo", headers={"X-Forwarded-For": "192.0.2.7"})
t.ok(j["headers"]["x-forwarded-for"] == "192.0.2.7, 127.0.0.1", "X-Forwarded-For appended",
     j["headers"])
st, h, j, _ = call("POST", "/echo/post", body=b'{"a":1}',
                   headers={"Content-Type": "application/json",
                            "Connection": "keep-alive, X-Hop", "X-Hop": "1", "TE": "trailers",
                            "X-Strata-Caller": "user=1", "X-Custom": "kept"})
t.ok(st == 201 and j["method"] == "POST" and j["body"] == '{"a":1}', "a POST with its body",
     (st, j))
hd = j["headers"]
t.ok("x-hop" not in hd and "te" not in hd and hd.get("x-custom") == "kept",
     "hop-by-hop headers (and those Connection names) are not passed up", hd)
t.ok(hd.get("x-strata-caller") == "anonymous",
     "a forged X-Strata-Caller is dropped: the gateway's own says anonymous", hd)

st, _, j, _ = call("GET", "/app/x/y?q=1")
t.ok(st == 200 and j["path"] == "/inner/x/y?q=1" and j["upstream"] in ("t1", "t2"),
     "rewrite replaces the prefix (TCP pool)", j)
st, _, j, _ = call("GET", "/application")
t.ok(st == 404, "a prefix matches whole segments only", (st, j))
st, h, j, _ = call("POST", "/app/x")
t.ok(st == 405 and "GET" in h.get("allow", "") and j["error"]["code"] == "method_not_allowed",
     "methods= refuses others with 405 and Allow", (st, h, j))
st, _, j, _ = call("GET", "/echo/z", headers={"Host": "Media.Test:8080"})
t.ok(st == 200 and j["upstream"] in ("t1", "t2"), "a host route wins over the hostless one", j)

seen = {}
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
for _ in range(8):
    st, _, j, _ = call("GET", "/app/w", conn=c)
    seen[j["upstream"]] = seen.get(j["upstream"], 0) + 1
c.close()
t.ok(seen == {"t1": 6, "t2": 2}, "weighted round robin: 3:1 over 8 requests", seen)

st, _, j, _ = call("POST", "/small", body=b"x" * 11)
t.ok(st == 413 and j["error"]["code"] == "body_too_large", "max_body: 413", (st, j))
st, _, j, _ = call("POST", "/small", body=b"x" * 10)
t.ok(st == 201, "at the limit: passed", st)

t0 = time.monotonic()
st, h, j, _ = call("GET", "/slow")
took = time.monotonic() - t0
t.ok(st == 504 and j["error"]["code"] == "gateway_timeout" and took < 1.8 and
     "x-request-id" in h, "an upstream slower than timeout_ms: 504 in time", (st, j, took))

half = {call("GET", "/half")[0] for _ in range(6)}
t.ok(half == {200}, "an idempotent request that cannot connect is retried on another member",
     half)
st, _, j, _ = call("POST", "/gone", body=b"{}")
t.ok(st == 502 and j["error"]["code"] == "bad_gateway", "no member reachable: 502", (st, j))
st, _, j, _ = call("DELETE", "/nowhere")
t.ok(st == 404 and j["error"]["code"] == "not_found", "no route: 404 in the error shape", (st, j))
st, _, j, _ = call("GET", "/healthz")
t.ok(st == 200, "the gateway's own /healthz still answers", st)

# Filters: client addresses, required and forbidden headers; header rules both ways.
st, h, j, _ = call("GET", "/filtered", headers={"X-Api": "1", "X-Old": "o", "X-Drop": "d"})
t.ok(st == 200 and j["headers"].get("x-added") == "yes please" and
     j["headers"].get("x-new") == "o" and "x-old" not in j["headers"] and
     "x-drop" not in j["headers"], "request header rules: add, rename, remove", j)
t.ok(h.get("x-frame-options") == "DENY" and "x-upstream" not in h,
     "response header rules: set, remove", h)
st, h, j, _ = call("GET", "/filtered")
t.ok(st == 400 and j["error"]["code"] == "missing_header" and h.get("x-frame-options") == "DENY",
     "a required header missing: 400, the response rules applied to the error too", (st, j, h))
st, _, j, _ = call("GET", "/filtered", headers={"X-Api": "1", "X-Debug": "1"})
t.ok(st == 400 and j["error"]["code"] == "forbidden_header", "a forbidden header: 400", (st, j))


def call_from(source, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        c.request("GET", path, headers={"X-Api": "1"})
        r = c.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        c.close()


st, j = call_from("127.0.0.2", "/filtered")
t.ok(st == 403 and j["error"]["code"] == "forbidden", "deny= beats allow=: 403", (st, j))
st, j = call_from("127.0.0.4", "/filtered")
t.ok(st == 200, "an allowed address passes", (st, j))
st, j = call_from("127.0.0.1", "/denied")
t.ok(st == 403, "deny=127.0.0.0/8: 403", (st, j))
st, j = call_from("127.0.0.3", "/echo")
st2, _ = call_from("127.0.0.3", "/index-that-is-not-here.html")
t.ok(st == 403 and st2 == 403, "[public] deny: refused on routes and static files alike",
     (st, st2))

# CORS: preflights answered by the gateway, headers on every answer of the route.
pre = {"Origin": "https://a.example.test", "Access-Control-Request-Method": "POST",
       "Access-Control-Request-Headers": "authorization, x-custom"}
st, h, _, body = call("OPTIONS", "/corsauth/x", headers=pre)
t.ok(st == 204 and h.get("access-control-allow-origin") == "https://a.example.test" and
     h.get("access-control-allow-methods") == "GET, POST" and
     h.get("access-control-allow-headers") == "authorization, x-custom" and
     h.get("access-control-allow-credentials") == "true" and
     h.get("access-control-max-age") == "120" and body == b"",
     "a preflight is answered at the gateway (before auth)", (st, h))
st, h, j, _ = call("OPTIONS", "/cors", headers=dict(pre, Origin="https://evil.test"))
t.ok(st == 403 and j["error"]["code"] == "cors_refused" and
     "access-control-allow-origin" not in h, "a preflight from another origin: 403", (st, h))
st, h, j, _ = call("OPTIONS", "/cors", headers=dict(pre, **{"Access-Control-Request-Method":
                                                            "DELETE"}))
t.ok(st == 403, "a preflight for a method not allowed: 403", (st, h))
st, h, j, _ = call("GET", "/cors", headers={"Origin": "https://app.test"})
t.ok(st == 200 and h.get("access-control-allow-origin") == "https://app.test" and
     h.get("access-control-expose-headers") == "X-Request-Id" and
     h.get("vary") == "Origin, Accept-Encoding",
     "an allowed origin's request: the gateway's CORS headers, the upstream's replaced", h)
st, h, j, _ = call("GET", "/cors", headers={"Origin": "https://evil.test"})
t.ok(st == 200 and "access-control-allow-origin" not in h,
     "another origin's request: no CORS headers at all", h)
st, h, j, _ = call("GET", "/corsauth", headers={"Origin": "https://app.test"})
t.ok(st == 401 and h.get("access-control-allow-origin") == "https://app.test",
     "the gateway's own 401 carries CORS headers (scripts can read it)", (st, h))
st, h, j, _ = call("OPTIONS", "/echo", headers=pre)
t.ok(st == 200 and j["method"] == "OPTIONS", "without cors= an OPTIONS goes upstream", (st, j))

# Compression: gzip (and brotli when built in) by Accept-Encoding; compress=off.
st, h, _, raw = call("GET", "/echo/big", headers={"Accept-Encoding": "gzip"})
unpacked = gzip.decompress(raw) if h.get("content-encoding") == "gzip" else b""
t.ok(st == 200 and len(raw) < len(unpacked) // 3 and json.loads(unpacked)["upstream"] == "u1" and
     h.get("vary") == "Accept-Encoding" and h.get("etag") == 'W/"big-1"',
     "gzip: smaller, same JSON, Vary, the ETag weakened", (h, len(raw), len(unpacked)))
st, h, _, raw = call("GET", "/echo/big", headers={"Accept-Encoding": "br;q=1, gzip;q=0.5"})
t.ok(st == 200 and h.get("content-encoding") in ("br", "gzip"),
     "br preferred by q-value (gzip when the build has no brotli)", h)
st, h, _, raw = call("GET", "/echo/big")
t.ok(st == 200 and "content-encoding" not in h and json.loads(raw)["upstream"] == "u1" and
     h.get("etag") == '"big-1"', "no Accept-Encoding: identity", h)
st, h, _, raw = call("GET", "/plain/big", headers={"Accept-Encoding": "gzip"})
t.ok(st == 200 and "content-encoding" not in h, "compress=off", h)
st, h, _, raw = call("HEAD", "/echo/big", headers={"Accept-Encoding": "gzip"})
t.ok(st == 200 and "content-encoding" not in h and raw == b"", "HEAD: not compressed", h)

# Session tokens from metad, verified at the gateway.
mc = UnixHTTPConnection(metad.sock, timeout=20)
mc.request("POST", "/v1/users", body=json.dumps({"name": "alice", "email": "a@example.org",
                                                  "password": "correct horse"}),
           headers={"Content-Type": "application/json"})
mc.getresponse().read()
st, _, login, _ = call("POST", "/v1/sessions",
                       body=json.dumps({"login": "alice", "password": "correct horse"}),
                       headers={"Content-Type": "application/json"})
t.ok(st == 201 and login["token"].startswith("st1."), "login through the gateway", (st, login))
token, alice = login["token"], login["user"]
st, _, j, _ = call("GET", "/v1/users/me", headers={"Authorization": "Bearer " + token})
t.ok(st == 200 and j["id"] == alice["id"], "a verified token reaches metad as the identity",
     (st, j))
st, _, j, _ = call("GET", "/echo/who", headers={"Authorization": "Bearer " + token})
t.ok(j["headers"].get("x-strata-caller", "").startswith(f"user={alice['id']}; session=") and
     "; scopes=" in j["headers"].get("x-strata-caller", "") and
     "authorization" not in j["headers"], "upstream gets X-Strata-Caller, not the token",
     j["headers"])
bad = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
st, _, j, _ = call("GET", "/echo/who", headers={"Authorization": "Bearer " + bad})
t.ok(st == 401 and j["error"]["code"] == "invalid_token", "an altered token: 401 at the gateway",
     (st, j))
st, _, j, _ = call("GET", "/private")
t.ok(st == 401 and j["error"]["code"] == "unauthenticated", "auth=required without credentials",
     (st, j))
st, _, j, _ = call("GET", "/private", headers={"Authorization": "Bearer " + token,
                                                "X-Strata-Caller": "user=1"})
t.ok(st == 200 and j["headers"]["x-strata-caller"].startswith(f"user={alice['id']}; "),
     "auth=required with a token: the verified identity, not the forged one", j)
st, _, j, _ = call("GET", "/private", headers={"Authorization": "Bearer sk_notchecked"})
t.ok(st == 200 and j["headers"].get("authorization") == "Bearer sk_notchecked" and
     j["headers"].get("x-strata-caller") == "anonymous",
     "an API key goes up for the upstream to check", j)
st, _, j, _ = call("GET", "/open", headers={"Authorization": "Bearer " + bad})
t.ok(st == 200 and j["headers"].get("x-strata-caller") == "anonymous" and
     j["headers"].get("authorization") == "Bearer " + bad, "auth=none passes Authorization on",
     j)

# JWTs: verified at the gateway, the claims passed up; exp, iss, aud, signature checked.
now = int(time.time())
good_claims = {"sub": "ext|42\r\nX-Evil: 1", "iss": "https://idp.test", "aud": ["strata"],
               "exp": now + 300, "iat": now, "scope": "files:read reports"}
st, _, j, _ = call("GET", "/jwt", headers={"Authorization": "Bearer " + jwt(good_claims)})
t.ok(st == 200 and j["headers"].get("x-strata-caller") ==
     "jwt; sub=ext%7C42%0D%0AX-Evil:%201; iss=https:%2F%2Fidp.test; scopes=files:read,reports"
     and "authorization" not in j["headers"] and "x-evil" not in j["headers"],
     "a valid JWT: its claims go up (percent-encoded), not the token", (st, j))
for why, bad_jwt, code in [
        ("expired", jwt(dict(good_claims, exp=now - 3600)), "expired"),
        ("another issuer", jwt(dict(good_claims, iss="https://evil.test")), "bad_issuer"),
        ("another audience", jwt(dict(good_claims, aud="other")), "bad_audience"),
        ("another key", jwt(good_claims, secret=os.urandom(32)), "bad_signature"),
        ("alg none", jwt(good_claims, header={"alg": "none", "kid": "k1"}).rsplit(".", 1)[0] + ".",
         "alg_not_allowed")]:
    st, _, j, _ = call("GET", "/jwt", headers={"Authorization": "Bearer " + bad_jwt})
    t.ok(st == 401 and j["error"]["code"] == "invalid_token" and code in j["error"]["message"],
         f"a JWT with {why}: 401 ({code})", (st, j))
# Verified JWTs are remembered, but never past exp + leeway (60 s): one with 2 s left is
# accepted twice, then refused.
short = jwt(dict(good_claims, exp=int(time.time()) - 60 + 3))
first = call("GET", "/jwt", headers={"Authorization": "Bearer " + short})[0]
again = call("GET", "/jwt", headers={"Authorization": "Bearer " + short})[0]
time.sleep(max(0.0, json.loads(base64.urlsafe_b64decode(short.split(".")[1] + "=="))["exp"]
               + 60 - time.time()) + 1.1)
st, _, j, _ = call("GET", "/jwt", headers={"Authorization": "Bearer " + short})
t.ok((first, again, st) == (200, 200, 401) and "expired" in j["error"]["message"],
     "a remembered JWT is refused once it expires", (first, again, st, j))
st, _, j, _ = call("GET", "/writers", headers={"Authorization": "Bearer " + token})
t.ok(st == 200 and "files:write" in j["headers"]["x-strata-caller"],
     "scopes=files:write: a session token that has it passes", (st, j))
st, _, j, _ = call("GET", "/writers", headers={"Authorization": "Bearer " + jwt(good_claims)})
t.ok(st == 403 and j["error"]["code"] == "insufficient_scope",
     "scopes=files:write: a JWT without it gets 403", (st, j))
st, _, j, _ = call("GET", "/admins", headers={"Authorization": "Bearer " + token})
t.ok(st == 403 and j["error"]["code"] == "insufficient_scope", "scopes= another scope: 403",
     (st, j))
st, _, j, _ = call("GET", "/writers", headers={"Authorization": "Bearer sk_notchecked"})
t.ok(st == 403, "scopes=: API keys are refused (metad alone knows their scopes)", (st, j))

# Rate limits: a bucket of 3 refilled at 3 per minute, per client address.
got = [call("GET", "/limited") for _ in range(4)]
t.ok([g[0] for g in got[:3]] == [200, 200, 200] and
     [g[1].get("ratelimit-remaining") for g in got[:3]] == ["2", "1", "0"] and
     got[0][1].get("ratelimit-limit") == "3", "under the limit: passed, RateLimit-* counting down",
     [(g[0], g[1].get("ratelimit-remaining")) for g in got])
st, h, j, _ = got[3]
t.ok(st == 429 and j["error"]["code"] == "rate_limited" and 15 <= int(h["retry-after"]) <= 20
     and h["ratelimit-remaining"] == "0", "over it: 429 with Retry-After", (st, h, j))
st, _, _, _ = call("GET", "/peruser", headers={"Authorization": "Bearer " + token})
st2, _, j2, _ = call("GET", "/peruser", headers={"Authorization": "Bearer " + token})
st3, _, _, _ = call("GET", "/peruser")
t.ok((st, st2, st3) == (200, 429, 200), "rate_key=user: alice's bucket is hers, anonymous "
     "callers draw from their address's", (st, st2, st3, j2))

# Configuration mistakes are refused before start, with the item and the reason.
for item, why in [('"/x pool=echo frob=1"', "unknown route option"),
                  ('"x pool=echo"', "must start with '/'"),
                  ('"/x"', "no pool=NAME"),
                  ('"/x pool=undefined"', "which proxy.pools does not define"),
                  ('"/x pool=echo burst=3"', "need rate="),
                  ('"/x pool=echo headers=nope"', "which proxy.header_rules does not define"),
                  ('"/x pool=echo cors=nope"', "which proxy.cors does not define"),
                  ('"/x pool=echo allow=10.0.0.1/8"', "past the prefix length")]:
    bad_conf = write_config(os.path.join(d, "bad.conf"), "gatewayd", rundir, d,
                            f'[proxy]\npools = ["echo unix:/x.sock"]\nroutes = [{item}]\n')
    r = subprocess.run([binary("gatewayd"), "--config", bad_conf, "--check-config"],
                       capture_output=True, text=True, timeout=10)
    t.ok(r.returncode != 0 and why in r.stderr, f"--check-config refuses {item}", r.stderr)

# Denied credentials: edited, then SIGHUP; a bad file on reload keeps the old list.
blocked_jwt = jwt(dict(good_claims, sub="blocked-sub"))
hashed_jwt = jwt(dict(good_claims, sub="hashed"))
fake_key = "sk_" + "%016x" % 4242 + "_" + b64u(os.urandom(32))
with open(os.path.join(d, "denied.txt"), "w") as f:
    f.write(f"user:{alice['id']}  # locked out\nsub:blocked-sub\nkey:4242\n"
            f"sha256:{hashlib.sha256(hashed_jwt.encode()).hexdigest()}\n")
gw.signal(signal.SIGHUP)


def status(path, cred):
    return call("GET", path, headers={"Authorization": "Bearer " + cred})


t.ok(wait_until(lambda: status("/private", token)[0] == 403, 5),
     "after SIGHUP a denied user's session token: 403", status("/private", token))
for what, path, cred in [("the user's token on an auth=none route", "/open", token),
                         ("a JWT by its sub", "/jwt", blocked_jwt),
                         ("an unchecked API key by its id", "/echo/k", fake_key),
                         ("a JWT by its SHA-256, on an auth=none route", "/open", hashed_jwt)]:
    st, _, j, _ = status(path, cred)
    want = 200 if what.startswith("the user's token") else 403
    t.ok(st == want and (st == 200 or j["error"]["code"] == "credential_denied"),
         f"denied credentials: {what}: {want}", (st, j))
st, _, j, _ = status("/jwt", jwt(good_claims))
t.ok(st == 200, "a credential not on the list still passes", (st, j))
with open(os.path.join(d, "denied.txt"), "w") as f:
    f.write("user:alice\n")
gw.signal(signal.SIGHUP)
time.sleep(1)
t.ok(status("/private", token)[0] == 403 and "denied.txt:1" in gw.output(),
     "a malformed list on reload is refused (file:line logged), the old one stays",
     gw.output()[-1500:])
with open(os.path.join(d, "denied.txt"), "w") as f:
    f.write("")
gw.signal(signal.SIGHUP)
t.ok(wait_until(lambda: status("/private", token)[0] == 200, 5),
     "an emptied list lets the user in again", status("/private", token))

# Metrics on the control socket: answers per route, upstream times and errors per member.
mc2 = UnixHTTPConnection(gw.sock, timeout=10)
mc2.request("GET", "/metrics")
text = mc2.getresponse().read().decode()
t.ok('strata_gateway_requests_total{route="/limited",pool="echo",code="429"} 1' in text and
     'strata_gateway_requests_total{route="/gone",pool="dead",code="502"} 1' in text and
     'strata_gateway_requests_total{route="media.test/echo",pool="tcp",code="200"} 1' in text,
     "per-route answers counted, the gateway's own refusals too",
     [l for l in text.splitlines() if l.startswith("strata_gateway_requests_total")])
t.ok(f'strata_gateway_upstream_errors_total{{pool="dead",member="unix:{dead}",kind="not_found"}}'
     in text and 'strata_gateway_upstream_duration_seconds_count{pool="echo"' in text,
     "upstream errors and times per member",
     [l for l in text.splitlines() if "upstream" in l][:12])

rc, _ = gw.stop()
t.ok(rc == 0, "gatewayd stops cleanly", gw.output())
metad.stop()
unix_up.shutdown()
for s in tcp_ups:
    s.shutdown()
t.done()
