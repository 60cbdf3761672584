#!/usr/bin/env python3
"""gatewayd against hostile and broken input, over raw sockets: request smuggling attempts
(Content-Length with Transfer-Encoding, two lengths, obfuscated codings, bad chunks,
obs-fold, bare CR, a request hidden after a refused one or inside a body), oversized heads
and bodies, invalid methods, targets and versions, non-ASCII and NUL bytes, slow clients,
forged identity headers and bad session tokens, and upstreams that refuse, hang, hang up or
answer garbage. Every answer must be a clear error (the JSON error shape where the gateway
or lib/http answers; libmicrohttpd's own 400/413/505 pages where it refuses before them),
never a crash or a hang, and an upstream that records every byte it gets must never see a
request the client hid from the gateway. The gateway must still be serving at the end."""

import base64
import hashlib
import http.client
import http.server
import json
import os
import socket
import subprocess
import threading
import time

from harness import (Daemon, Tap, UnixHTTPConnection, binary, free_port, serve_unix, tempdir,
                     write_config)

t = Tap()
d = tempdir()
rundir = os.path.join(d, "run")
IDLE = 3  # [http] idle_timeout of the gateway under test, seconds

# --- Ed25519 (RFC 8032 section 6, the reference code) to mint session tokens of any shape:
# expired, signed by another key, altered. Checked against libsodium below (stratactl gives
# the same public key for the same seed, and a token signed here verifies at the gateway).
_P = 2**255 - 19
_Q = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _add(a, b):
    A = (a[1] - a[0]) * (b[1] - b[0]) % _P
    B = (a[1] + a[0]) * (b[1] + b[0]) % _P
    C = 2 * a[3] * b[3] * _D % _P
    D = 2 * a[2] * b[2] % _P
    E, F, G, H = B - A, D - C, D + C, B + A
    return (E * F % _P, G * H % _P, F * G % _P, E * H % _P)


def _mul(s, pt):
    q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            q = _add(q, pt)
        pt = _add(pt, pt)
        s >>= 1
    return q


def _base():
    y = 4 * pow(5, _P - 2, _P) % _P
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P)
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if x & 1:
        x = _P - x
    return (x, y, 1, x * y % _P)


_G = _base()


def _compress(pt):
    zi = pow(pt[2], _P - 2, _P)
    x, y = pt[0] * zi % _P, pt[1] * zi % _P
    return int.to_bytes(y | ((x & 1) << 255), 32, "little")


def _expand(seed):
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a, h[32:]


def ed25519_public(seed):
    return _compress(_mul(_expand(seed)[0], _G))


def ed25519_sign(seed, msg):
    a, prefix = _expand(seed)
    pub = _compress(_mul(a, _G))
    r = int.from_bytes(hashlib.sha512(prefix + msg).digest(), "little") % _Q
    R = _compress(_mul(r, _G))
    h = int.from_bytes(hashlib.sha512(R + pub + msg).digest(), "little") % _Q
    return R + int.to_bytes((r + h * a) % _Q, 32, "little")


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def key_id(pub):
    return hashlib.sha256(pub).digest()[:8].hex()


def mint(seed, claims, kid=None):
    """A session token (lib/auth/session_token.hh): st1.KID.CLAIMS.SIG."""
    kid = kid or key_id(ed25519_public(seed))
    signed = f"st1.{kid}.{b64url(json.dumps(claims).encode())}"
    return signed + "." + b64url(ed25519_sign(seed, signed.encode()))


seed = os.urandom(32)
other_seed = os.urandom(32)
with open(os.path.join(d, "session.key"), "w") as f:
    f.write(seed.hex() + "\n")
pub = subprocess.run([binary("stratactl"), "auth", "public-key", os.path.join(d, "session.key")],
                     capture_output=True, text=True, timeout=10)
t.ok(pub.returncode == 0 and pub.stdout.strip() == ed25519_public(seed).hex(),
     "the test's Ed25519 gives libsodium's public key for the same seed", (pub, ed25519_public(seed).hex()))
with open(os.path.join(d, "session.pub"), "w") as f:
    f.write(ed25519_public(seed).hex() + "\n")

# --- The recording upstream: every request it parses, and every byte it reads.
rec_lock = threading.Lock()
rec_requests = []
rec_bytes = bytearray()


class Tee:
    """The handler's rfile, recording each byte read from the socket."""

    def __init__(self, f):
        self.f = f

    def _keep(self, b):
        with rec_lock:
            rec_bytes.extend(b)
        return b

    def readline(self, *a):
        return self._keep(self.f.readline(*a))

    def read(self, *a):
        return self._keep(self.f.read(*a))

    def __getattr__(self, name):
        return getattr(self.f, name)


class Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        self.rfile = Tee(self.rfile)

    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        hdrs = [(k.lower(), v) for k, v in self.headers.items()]
        with rec_lock:
            rec_requests.append({"method": self.command, "path": self.path, "headers": hdrs,
                                 "body": body})
        out = json.dumps({"method": self.command, "path": self.path, "headers": hdrs,
                          "body": body.decode("latin-1")}).encode()
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = answer


def rec_reset():
    with rec_lock:
        rec_requests.clear()
        rec_bytes.clear()


def rec_seen():
    with rec_lock:
        return list(rec_requests), bytes(rec_bytes)


rec = serve_unix(os.path.join(d, "rec.sock"), Recorder)

# --- Upstreams that misbehave, on TCP: each connection handled by `fn` in its own thread.
stop_all = threading.Event()
raw_servers = []


def read_head(c):
    c.settimeout(5)
    buf = b""
    try:
        while b"\r\n\r\n" not in buf:
            chunk = c.recv(65536)
            if not chunk:
                break
            buf += chunk
    except OSError:
        pass
    return buf


def raw_upstream(fn):
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    ls.settimeout(0.2)
    raw_servers.append(ls)

    def loop():
        while not stop_all.is_set():
            try:
                c, _ = ls.accept()
            except OSError:
                continue
            threading.Thread(target=fn, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return f"http://127.0.0.1:{ls.getsockname()[1]}"


def never_answers(c):
    read_head(c)
    stop_all.wait(30)
    c.close()


def answers_garbage(c):
    read_head(c)
    c.sendall(b"SSH-2.0-OpenSSH_9.2\r\nthis is not HTTP at all\r\n\r\n")
    c.close()


def closes_mid_response(c):
    read_head(c)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\npartial")
    c.close()


def hangs_up_at_once(c):
    read_head(c)
    c.close()


def bad_status_line(c):
    read_head(c)
    c.sendall(b"HTTP/1.1 2x0 Fine\r\nContent-Length: 2\r\n\r\nok")
    c.close()


hole = raw_upstream(never_answers)
garbage = raw_upstream(answers_garbage)
midclose = raw_upstream(closes_mid_response)
slam = raw_upstream(hangs_up_at_once)
badstatus = raw_upstream(bad_status_line)
refused = f"http://127.0.0.1:{free_port()}"  # nobody listens there

port = free_port()
pools = [f"rec unix:{d}/rec.sock", f"hole {hole}", f"garbage {garbage}",
         f"midclose {midclose}", f"slam {slam}", f"badstatus {badstatus}", f"refused {refused}"]
routes = ["/rec pool=rec", "/small pool=rec max_body=100", "/private pool=rec auth=required",
          "/hole pool=hole timeout_ms=1000", "/garbage pool=garbage", "/midclose pool=midclose",
          "/slam pool=slam", "/badstatus pool=badstatus", "/refused pool=refused"]
extra = (f'[http]\nidle_timeout = {IDLE}\nmax_body_bytes = 65536\n'
         f'[public]\nlisten = ["127.0.0.1:{port}"]\nweb_root = "{d}"\n'
         f'[proxy]\npools = {json.dumps(pools)}\nroutes = {json.dumps(routes)}\n'
         f'[auth]\nsession_public_keys_file = "{d}/session.pub"\n')
conf = write_config(os.path.join(d, "gatewayd.conf"), "gatewayd", rundir, d, extra)
gw = Daemon("gatewayd", conf, rundir)
if not t.ok(gw.wait_ready(), "gatewayd starts", gw.output()):
    t.done()


# --- Raw client side.
def raw(data, timeout=2.0, pause=None):
    """Sends data (bytes, or a list of pieces sent `pause` s apart) on a new connection and
    reads until the gateway closes or `timeout` s pass without a byte. Returns (bytes,
    closed by the gateway, seconds taken)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    t0 = time.monotonic()
    try:
        for piece in (data if isinstance(data, list) else [data]):
            s.sendall(piece)
            if pause:
                time.sleep(pause)
    except OSError:
        pass  # the gateway may hang up before it has everything (413, 431)
    out, closed = b"", False
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            out += chunk
    except socket.timeout:
        pass
    except OSError:
        closed = True
    s.close()
    return out, closed, time.monotonic() - t0


def responses(data):
    """Splits a byte stream of HTTP/1.1 responses (Content-Length bodies) into
    (status, headers, body) tuples; stops at what does not parse."""
    out = []
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0 or not data.startswith(b"HTTP/1."):
            break
        lines = data[:end].decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ")[1])
        except (IndexError, ValueError):
            break
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0") or 0)
        out.append((status, hdrs, data[end + 4:end + 4 + n]))
        data = data[end + 4 + n:]
    return out


def error_shape(body, code=None):
    try:
        e = json.loads(body)["error"]
        return isinstance(e["message"], str) and isinstance(e["code"], str) and \
            (code is None or e["code"] == code)
    except (ValueError, KeyError, TypeError):
        return False


def call(method, path, body=None, headers=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def still_serving():
    try:
        st, _, body = call("GET", "/rec/still-serving", timeout=5)
        return st == 200 and json.loads(body)["path"] == "/rec/still-serving"
    except (OSError, ValueError, http.client.HTTPException):
        return False


HIDDEN = b"GET /rec/SMUGGLED HTTP/1.1\r\nHost: x\r\n\r\n"


def refused_check(name, head, statuses=(400,), shape=True, hidden=True):
    """`head` (and, when `hidden`, a request hidden after it) on one connection: the first
    answer has one of `statuses` (in the JSON error shape when `shape`), the gateway closes
    the connection, and the upstream gets nothing: no request at all, no byte of the hidden
    one."""
    rec_reset()
    out, closed, took = raw(head + (HIDDEN if hidden else b""))
    time.sleep(0.25)  # whatever was forwarded has arrived by now
    reqs, got = rec_seen()
    rs = responses(out)
    ok = bool(rs) and rs[0][0] in statuses and closed and not reqs and b"SMUGGLED" not in got
    if shape:
        ok = ok and len(rs) == 1 and error_shape(rs[0][2])
    else:
        ok = ok and out.count(b"SMUGGLED") == 0
    t.ok(ok, f"{name}: {'/'.join(map(str, statuses))}, closed, nothing reaches the upstream",
         (out[:600], closed, round(took, 2), reqs))


# --- Positive controls: the recorder sees what the gateway forwards, pipelining works.
rec_reset()
out, closed, _ = raw(b"GET /rec/one HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /rec/two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
reqs, _ = rec_seen()
rs = responses(out)
t.ok([r[0] for r in rs] == [200, 200] and [q["path"] for q in reqs] == ["/rec/one", "/rec/two"],
     "control: two pipelined requests are both answered and both reach the upstream",
     (out[:400], reqs))
rec_reset()
out, closed, _ = raw(b"POST /rec/body HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     b"Content-Length: " + str(len(HIDDEN)).encode() + b"\r\n\r\n" + HIDDEN)
reqs, got = rec_seen()
t.ok(len(reqs) == 1 and reqs[0]["path"] == "/rec/body" and reqs[0]["body"] == HIDDEN and
     got.count(b"GET /rec/SMUGGLED") == 1,
     "a request inside a body stays body: one request upstream, its body byte for byte",
     (out[:300], reqs))

# --- Request smuggling: framing two parsers could read differently is refused.
CL_TE = b"POST /rec/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
refused_check("Content-Length and Transfer-Encoding", CL_TE)
refused_check("Transfer-Encoding then Content-Length",
              b"POST /rec/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
              b"Content-Length: " + str(5 + len(HIDDEN)).encode() + b"\r\n\r\n0\r\n\r\n")
refused_check("two different Content-Lengths",
              b"POST /rec/a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
              b"Content-Length: " + str(len(HIDDEN)).encode() + b"\r\n\r\n")
refused_check("Content-Length list \"5, 0\" (libmicrohttpd's own 400)",
              b"POST /rec/a HTTP/1.1\r\nHost: x\r\nContent-Length: 0, 5\r\n\r\n", shape=False)
refused_check("Content-Length \"+0\" (libmicrohttpd's own 400)",
              b"POST /rec/a HTTP/1.1\r\nHost: x\r\nContent-Length: +0\r\n\r\n", shape=False)
for coding, status in [(b"chunked, identity", 400), (b"xchunked", 400), (b"identity", 400),
                       (b"chunked\t", 400), (b"chunked, chunked", 400), (b"gzip, chunked", 501),
                       (b"\x0bchunked", 400)]:
    refused_check(f"Transfer-Encoding: {coding.decode()!r}",
                  b"POST /rec/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + coding +
                  b"\r\n\r\n0\r\n\r\n", statuses=(status,))
refused_check("Transfer-Encoding: ' chunked' with Content-Length",
              b"POST /rec/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:  chunked\r\n"
              b"Content-Length: 5\r\n\r\n0\r\n\r\n")
refused_check("two Transfer-Encoding headers",
              b"POST /rec/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
              b"Transfer-Encoding: identity\r\n\r\n0\r\n\r\n")
refused_check("Transfer-Encoding in an HTTP/1.0 request",
              b"POST /rec/a HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
refused_check("'Transfer-Encoding :' (space before the colon)",
              b"POST /rec/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n"
              b"Content-Length: 5\r\n\r\n0\r\n\r\n")
for size in [b"zz", b"-1", b"0x3", b"", b"3\n"]:
    refused_check(f"chunk size {size.decode()!r}",
                  b"POST /rec/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + size +
                  b"\r\nabc\r\n0\r\n\r\n", shape=False)
refused_check("chunk size over 2^64",
              b"POST /rec/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"ffffffffffffffffffff\r\nabc\r\n0\r\n\r\n", statuses=(400, 413), shape=False)
refused_check("chunk data longer than its size (libmicrohttpd's own 400)",
              b"POST /rec/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"3\r\nabcdef\r\n0\r\n\r\n", shape=False)
refused_check("obs-fold hiding Transfer-Encoding",
              b"POST /rec/a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n"
              b"Content-Length: 5\r\n\r\n0\r\n\r\n")
refused_check("obs-fold (tab) hiding a header",
              b"GET /rec/a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\tX-B: 2\r\n\r\n")
refused_check("bare CR hiding Transfer-Encoding",
              b"POST /rec/a HTTP/1.1\r\nHost: x\r\nX-A: 1\rTransfer-Encoding: chunked\r\n"
              b"Content-Length: 5\r\n\r\n0\r\n\r\n")
refused_check("bare CR inside a header value",
              b"GET /rec/a HTTP/1.1\r\nHost: x\r\nX-A: 1\r2\r\n\r\n")
refused_check("no Host on HTTP/1.1", b"GET /rec/a HTTP/1.1\r\n\r\n")
refused_check("two Host headers", b"GET /rec/a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")

# What is accepted, and how (documented by these checks).
rec_reset()
out, _, _ = raw(b"POST /rec/lf HTTP/1.1\nHost: x\nContent-Length: 3\nConnection: close\n\nabc")
reqs, _ = rec_seen()
rs = responses(out)
t.ok(len(rs) == 1 and rs[0][0] == 201 and len(reqs) == 1 and reqs[0]["body"] == b"abc",
     "bare LF line ends are accepted (RFC 9112 2.2): one request, its body", (out[:300], reqs))
rec_reset()
out, _, _ = raw(b"POST /rec/ext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:  Chunked\r\n"
                b"Connection: close\r\n\r\n3;name=value\r\nabc\r\n0\r\n\r\n")
reqs, _ = rec_seen()
t.ok(len(reqs) == 1 and reqs[0]["body"] == b"abc" and
     not any(k == "transfer-encoding" for k, _ in reqs[0]["headers"]),
     "' Chunked' with a chunk extension is read as chunked; the upstream gets a plain body",
     (out[:300], reqs))
rec_reset()
out, _, _ = raw(b"POST /rec/same HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n"
                b"Connection: close\r\n\r\nabc")
reqs, _ = rec_seen()
t.ok((len(reqs) == 1 and reqs[0]["body"] == b"abc") or
     (out.startswith(b"HTTP/1.1 400") and not reqs),
     "two equal Content-Lengths are one request or refused (RFC 9110 8.6), never two",
     (out[:300], reqs))
rec_reset()
out, _, _ = raw(b"POST /rec/bws HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                b"Connection: close\r\n\r\n3 ;x\r\nabc\r\n0\r\n\r\n")
reqs, _ = rec_seen()
t.ok((len(reqs) == 1 and reqs[0]["body"] == b"abc") or
     (out.startswith(b"HTTP/1.1 400") and not reqs),
     "chunk size '3 ;x' (BWS before an extension, RFC 9112 7.1.1): read as 3 bytes or refused",
     (out[:300], reqs))
rec_reset()
out, _, _ = raw(b"GET /rec/fold HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                b"X-Strata-: user=1\r\n Caller\r\n\r\n")
reqs, got = rec_seen()
t.ok(out.startswith((b"HTTP/1.1 200", b"HTTP/1.1 400")) and
     all(v == "anonymous" for q in reqs for k, v in q["headers"] if k == "x-strata-caller") and
     b"\r\n " not in got and b"\r\n\t" not in got,
     "an obs-fold is never passed up as a fold, and cannot build an identity header",
     (out[:300], reqs))

# --- Oversized heads and bodies.
refused_check("a 20 KB request line",
              b"GET /rec/" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
              statuses=(414, 431, 400), hidden=False)
refused_check("a 20 KB header", b"GET /rec/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: "
              + b"b" * 20000 + b"\r\n\r\n", statuses=(431,), hidden=False)
refused_check("300 headers", b"GET /rec/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" +
              b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 60) for i in range(300)) + b"\r\n",
              statuses=(431,), hidden=False)
rec_reset()
out, closed, took = raw(b"GET /rec/a HTTP/1.1\r\nHost: x\r\nX-Huge: " + b"h" * (2 << 20) + b"\r\n\r\n",
                        timeout=8)
reqs, _ = rec_seen()
t.ok(out.startswith(b"HTTP/1.1 431") or (out == b"" and closed), "a 2 MiB header: 431 or a "
     "hang-up, at once", (out[:200], closed, round(took, 2), reqs))
t.ok(not reqs, "... and nothing reaches the upstream", reqs)
rec_reset()
out, closed, took = raw(b"POST /rec/a HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n", timeout=5)
rs = responses(out)
t.ok(len(rs) == 1 and rs[0][0] == 413 and error_shape(rs[0][2], "payload_too_large") and took < 3
     and not rec_seen()[0], "Content-Length over [http] max_body_bytes: 413 before the body is sent",
     (out[:300], round(took, 2)))
refused_check("a body over the route's max_body", b"POST /small HTTP/1.1\r\nHost: x\r\n"
              b"Connection: close\r\nContent-Length: 101\r\n\r\n" + b"x" * 101,
              statuses=(413,), hidden=False)
refused_check("a chunked body over the route's max_body", b"POST /small HTTP/1.1\r\nHost: x\r\n"
              b"Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n" +
              b"50\r\n" + b"x" * 80 + b"\r\n50\r\n" + b"y" * 80 + b"\r\n0\r\n\r\n",
              statuses=(413,), hidden=False)
chunk = b"4000\r\n" + b"z" * 0x4000 + b"\r\n"
rec_reset()
out, closed, took = raw(b"POST /rec/big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                        + chunk * 8 + b"0\r\n\r\n", timeout=5)
t.ok(out.startswith(b"HTTP/1.1 413") and not rec_seen()[0],
     "a chunked body over [http] max_body_bytes: 413", (out[:300], closed))
rec_reset()
st, _, body = call("POST", "/small", body=b"x" * 100)
t.ok(st == 201 and json.loads(body)["body"] == "x" * 100, "control: at the route's max_body, passed",
     (st, body[:200]))

# --- Methods, targets, versions, bytes that do not belong.
refused_check("a method that is not a token", b"G{T /rec/a HTTP/1.1\r\nHost: x\r\n\r\n")
refused_check("a NUL before the method (libmicrohttpd's own 400)",
              b"\x00GET /rec/a HTTP/1.1\r\nHost: x\r\n\r\n", shape=False)
for m in [b"FROB", b"TRACE", b"get", b"A" * 1000]:
    refused_check(f"method {m[:20].decode()}", m + b" /rec/a HTTP/1.1\r\nHost: x\r\nConnection: "
                  b"close\r\n\r\n", statuses=(405, 501, 400), hidden=False)
refused_check("CONNECT", b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n",
              statuses=(400, 405, 501))
for name, target in [("no leading slash", b"rec/a"), ("'*' on GET", b"*"),
                     ("a raw space", b"/rec/a b"), ("a bad %-escape", b"/rec/%zz"),
                     ("%00", b"/rec/a%00b"), ("%0d%0a", b"/rec/a%0d%0aX-Evil:%201"),
                     ("raw non-ASCII", b"/rec/caf\xc3\xa9"), ("a raw DEL", b"/rec/a\x7f"),
                     ("'..' up to a route that needs auth", b"/rec/../private/secret"),
                     ("'%2e%2e' up to a route that needs auth", b"/rec/%2e%2e/private/secret"),
                     ("'..%2f'", b"/rec/..%2f..%2fprivate"), ("'.'", b"/rec/./a")]:
    refused_check(f"request-target with {name}", b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
refused_check("HTTP/0.9", b"GET /rec/a\r\n", shape=False, hidden=False)
refused_check("an unknown HTTP version (libmicrohttpd's own 400)",
              b"GET /rec/a HTTP/9\r\nHost: x\r\n\r\n", shape=False)
refused_check("the HTTP/2 connection preface (libmicrohttpd's own 505)",
              b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00",
              statuses=(505, 400), shape=False, hidden=False)
refused_check("a header name with a space", b"GET /rec/a HTTP/1.1\r\nHost: x\r\nX A: 1\r\n\r\n")
refused_check("a header name with non-ASCII bytes",
              b"GET /rec/a HTTP/1.1\r\nHost: x\r\nX-\xc3\xa9: 1\r\n\r\n")
refused_check("a control character in a value", b"GET /rec/a HTTP/1.1\r\nHost: x\r\nX-A: 1\x01\r\n\r\n")
refused_check("a NUL in a header name (libmicrohttpd's own 400)",
              b"GET /rec/a HTTP/1.1\r\nHost: x\r\nX-\x00A: 1\r\n\r\n", shape=False)
rec_reset()
out, _, _ = raw(b"GET /rec/latin HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Name: caf\xc3\xa9\xff\r\n\r\n")
reqs, got = rec_seen()
t.ok(out.startswith(b"HTTP/1.1 200") and b"X-Name: caf\xc3\xa9\xff\r\n" in got,
     "non-ASCII bytes in a header value (obs-text, RFC 9110 5.5) pass unchanged", (out[:200], got[-300:]))
for name, data in [("a header value", b"GET /rec/nul HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                      b"X-A: 1\x00\r\nGET /rec/SMUGGLED HTTP/1.1\r\n\r\n"),
                   ("the path", b"GET /rec/nul\x00/SMUGGLED HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")]:
    rec_reset()
    out, closed, took = raw(data)
    time.sleep(0.25)
    reqs, got = rec_seen()
    rs = responses(out)
    t.ok(len(rs) == 1 and rs[0][0] in (200, 400) and closed and b"\x00" not in got and
         b"SMUGGLED" not in got, f"a NUL in {name}: answered once, no NUL and nothing after it "
         "reaches the upstream", (out[:300], reqs))
for name, junk in [("a TLS ClientHello", bytes.fromhex("16030100a5010000a10303") + bytes(range(64))),
                   ("binary junk without a line end", bytes(range(1, 256)) * 2)]:
    out, closed, took = raw(junk, timeout=IDLE + 4)
    t.ok(closed and took < IDLE + 3 and (out == b"" or out.startswith(b"HTTP/1.1 400")),
         f"{name}: closed (400 or silently) within the idle timeout", (out[:200], closed, round(took, 2)))
t.ok(still_serving(), "the gateway serves normal requests after all of that", gw.output()[-2000:])

# --- Slow clients.
cut = {}


def slowloris(i):
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    t0 = time.monotonic()
    s.sendall(b"GET /rec/slowloris HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    try:
        for _ in range(4 * (IDLE + 6)):  # a byte each 250 ms for IDLE + 6 s at most
            time.sleep(0.25)
            s.sendall(b"a")
            s.setblocking(False)
            try:
                if s.recv(4096) == b"":
                    break
            except BlockingIOError:
                pass
            finally:
                s.setblocking(True)
                s.settimeout(2)
        else:
            cut[i] = None  # never cut off
            return
    except OSError:
        pass
    cut[i] = time.monotonic() - t0
    s.close()


rec_reset()
threads = [threading.Thread(target=slowloris, args=(i,)) for i in range(4)]
for th in threads:
    th.start()
latencies, statuses = [], []
while any(th.is_alive() for th in threads):
    t0 = time.monotonic()
    try:
        st, _, _ = call("GET", "/rec/prompt", timeout=3)
    except OSError as e:
        st = repr(e)
    latencies.append(time.monotonic() - t0)
    statuses.append(st)
    time.sleep(0.25)
for th in threads:
    th.join(IDLE + 10)
reqs, _ = rec_seen()
t.ok(len(cut) == 4 and all(v is not None and IDLE - 0.5 <= v <= IDLE + 2.5 for v in cut.values()),
     f"heads sent a byte at a time are cut off after [http] idle_timeout ({IDLE} s)", cut)
t.ok(len(statuses) >= 5 and all(s == 200 for s in statuses) and max(latencies) < 1.0,
     "other clients are served promptly meanwhile",
     (statuses, [round(x, 3) for x in latencies]))
t.ok(not any(q["path"] == "/rec/slowloris" for q in reqs), "no slow head reaches the upstream", reqs)

rec_reset()
out, closed, took = raw(b"POST /rec/stall HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" +
                        b"s" * 10, timeout=IDLE + 6)
rs = responses(out)
t.ok(closed and IDLE - 0.5 <= took <= IDLE + 2.5 and all(r[0] >= 400 for r in rs) and
     not rec_seen()[0], "a body that stalls half way: the connection closes after the idle "
     "timeout, nothing goes up", (out[:300], closed, round(took, 2)))

# --- Identity: forged headers, bad session tokens.
now = int(time.time())
claims = {"sub": 42, "sid": 7, "iat": now - 10, "exp": now + 3600, "scp": []}
good = mint(seed, claims)
rec_reset()
out, _, _ = raw(b"GET /rec/who HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Strata-Caller: user=1\r\n"
                b"x-strata-caller: user=2\r\nX-STRATA-CALLER: user=3\r\n\r\n")
reqs, _ = rec_seen()
t.ok(out.startswith(b"HTTP/1.1 200") and len(reqs) == 1 and
     [v for k, v in reqs[0]["headers"] if k == "x-strata-caller"] == ["anonymous"],
     "forged X-Strata-Caller headers (any case, several) are all stripped", reqs)
rec_reset()
st, _, body = call("GET", "/private/who", headers={"Authorization": "Bearer " + good,
                                                   "X-Strata-Caller": "user=1"})
reqs, _ = rec_seen()
callers = [v for q in reqs for k, v in q["headers"] if k == "x-strata-caller"]
t.ok(st == 200 and callers == ["user=42; session=7; scopes="] and
     not any(k == "authorization" for q in reqs for k, _ in q["headers"]),
     "a valid token: exactly one X-Strata-Caller, the verified one; the token is not passed up",
     (st, reqs))


def tampered_claims(tok):
    parts = tok.split(".")
    forged = dict(claims, sub=1)
    parts[2] = b64url(json.dumps(forged).encode())
    return ".".join(parts)


bad_tokens = [
    ("expired", mint(seed, dict(claims, iat=now - 7200, exp=now - 3600)), "expired"),
    ("signed by another key under this key's id",
     mint(other_seed, claims, kid=key_id(ed25519_public(seed))), None),
    ("signed by an unknown key", mint(other_seed, claims), None),
    ("claims altered after signing", tampered_claims(good), None),
    ("signature cut short", good[:-10], None),
    ("no signature", good.rsplit(".", 1)[0], None),
    ("claims not JSON", None, None),
    ("claims without exp", mint(seed, {"sub": 42, "sid": 7, "iat": now, "scp": []}), None),
    ("just the prefix", "st1.", None),
    ("bad base64", "st1.0123456789abcdef.!!!!.????", None),
    ("8 KB long", "st1." + "A" * 8192, None),
]
signed = f"st1.{key_id(ed25519_public(seed))}.{b64url(b'not json')}"
bad_tokens[6] = ("claims not JSON", signed + "." + b64url(ed25519_sign(seed, signed.encode())), None)
for name, tok, word in bad_tokens:
    rec_reset()
    st, _, body = call("GET", "/private/x", headers={"Authorization": "Bearer " + tok})
    ok = st == 401 and error_shape(body, "invalid_token") and not rec_seen()[0]
    if word:
        ok = ok and word in json.loads(body)["error"]["message"]
    t.ok(ok, f"a session token {name}: 401 invalid_token, nothing goes up", (st, body[:300]))
for name, value in [("none", None), ("Basic credentials", "Basic dXNlcjpwYXNz"),
                    ("an empty Bearer", "Bearer "),
                    ("a Bearer that is neither a session token nor an API key",
                     "Bearer not-a-token")]:
    rec_reset()
    st, _, body = call("GET", "/private/x", headers={"Authorization": value} if value else {})
    t.ok(st == 401 and error_shape(body) and not rec_seen()[0],
         f"auth=required with {name}: 401 in the error shape, nothing goes up", (st, body[:300]))

# --- Upstreams that fail: each answer in the error shape, and the gateway goes on.
for name, path, status, code, limit in [
        ("refuses connections", "/refused/x", 502, "bad_gateway", 3.0),
        ("accepts and never answers", "/hole/x", 504, "gateway_timeout", 2.0),
        ("answers garbage", "/garbage/x", 502, "bad_gateway", 3.0),
        ("closes mid-response", "/midclose/x", 502, "bad_gateway", 3.0),
        ("hangs up without answering", "/slam/x", 502, "bad_gateway", 3.0),
        ("sends a broken status line", "/badstatus/x", 502, "bad_gateway", 3.0)]:
    for method in ("GET", "POST"):
        t0 = time.monotonic()
        try:
            st, h, body = call(method, path, body=b"{}" if method == "POST" else None, timeout=10)
        except (OSError, http.client.HTTPException) as e:
            st, h, body = repr(e), {}, b""
        took = time.monotonic() - t0
        t.ok(st == status and error_shape(body, code) and took < limit and "x-request-id" in h,
             f"an upstream that {name} ({method}): {status} {code} within {limit} s",
             (st, body[:300], round(took, 2)))
    t.ok(still_serving(), f"... and the next request is served ({name})")

# --- Still alive, still answering.
t.ok(gw.proc.poll() is None, "gatewayd is still running", gw.output()[-3000:])
try:
    st, _, body = call("GET", "/healthz", timeout=5)
except OSError as e:
    st, body = repr(e), b""
t.ok(st == 200 and json.loads(body or b"{}").get("status") == "ok", "the public /healthz answers",
     (st, body))
try:
    c = UnixHTTPConnection(gw.sock, timeout=5)
    c.request("GET", "/healthz")
    st = c.getresponse().status
    c.close()
except OSError as e:
    st = repr(e)
t.ok(st == 200, "the control socket's /healthz answers", st)
rc, _ = gw.stop()
t.ok(rc == 0, "gatewayd stops cleanly", gw.output()[-3000:])
stop_all.set()
for ls in raw_servers:
    ls.close()
rec.shutdown()
t.done()
