#!/usr/bin/env python3
"""gatewayd's WebSocket proxying (route option websocket=on) against a real WebSocket upstream
of the test (RFC 6455 handshake and framing written out below, on TCP and on a unix socket):
echo both ways, large messages, closes from either side, a refusing upstream relayed, routes
without websocket=on refused, auth and identity applied to the handshake, rate limits, the
idle timeout, the connection bound, a reload and a stop with connections open."""

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import socketserver
import ssl
import subprocess
import struct
import threading
import time

from harness import Daemon, Tap, free_port, request, tempdir, wait_until, write_config

t = Tap()
d = tempdir()
rundir = os.path.join(d, "run")
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def read_head(sock):
    """Reads an HTTP head; returns (first line, headers dict lower-cased, bytes after it)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the head ended: %r" % data)
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    return lines[0], headers, rest


class Frames:
    """RFC 6455 framing over a socket: the client masks what it sends, the server does not."""

    def __init__(self, sock, mask, pending=b""):
        self.sock, self.mask, self.buf = sock, mask, pending

    def send(self, opcode, payload):
        self.sock.sendall(frame(opcode, payload, self.mask))

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        """(opcode, payload) of the next frame; EOFError when the connection closed."""
        b0, b1 = self._need(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._need(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._need(8))[0]
        key = self._need(4) if b1 & 0x80 else None
        payload = self._need(n)
        if key:
            payload = _xor(payload, key)
        return b0 & 0x0F, payload


def frame(opcode, payload, mask):
    """One final frame; masked (as clients send) when mask."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if mask:
        key = os.urandom(4)
        head += key
        payload = _xor(payload, key)
    return head + payload


def _xor(data, key):
    k = (key * (len(data) // 4 + 1))[:len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(len(data), "big")


# What the upstream saw: request heads by path, and connections whose peer went away.
seen = {}
gone = {}
seen_lock = threading.Lock()


class Upstream(socketserver.BaseRequestHandler):
    """/echo*: echoes frames; /hello: greets at once; /bye: says bye and closes; /watch/ID:
    notes when the gateway closes it; /refuse: answers 403."""

    def handle(self):
        sock = self.request
        try:
            line, headers, rest = read_head(sock)
        except (ConnectionError, OSError):
            return
        path = line.split(" ")[1]
        with seen_lock:
            seen.setdefault(path, []).append(headers)
        if "/refuse" in path:
            body = b'{"upstream":"says no"}'
            sock.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\nX-Why: policy\r\n\r\n" % len(body) + body)
            return
        answer = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                  % accept_key(headers.get("sec-websocket-key", "")))
        if "sec-websocket-protocol" in headers:
            answer += "Sec-WebSocket-Protocol: %s\r\n" % headers["sec-websocket-protocol"].split(",")[0]
        greeting = b""
        if "/hello" in path:  # a frame in the same packet as the 101
            greeting = b"\x81\x05hello"
        sock.sendall(answer.encode() + b"\r\n" + greeting)
        f = Frames(sock, mask=False, pending=rest)
        if "/bye" in path:
            f.send(0x1, b"bye")
            f.send(0x8, struct.pack("!H", 1000))
            sock.shutdown(socket.SHUT_RDWR)
            return
        try:
            while True:
                op, payload = f.recv()
                if op == 0x8:
                    f.send(0x8, payload)
                    return
                f.send(op, payload)
        except (EOFError, OSError):
            with seen_lock:
                gone[path] = time.monotonic()


class TCPUp(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


class UnixUp(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


tcp_up = TCPUp(("127.0.0.1", 0), Upstream)
threading.Thread(target=tcp_up.serve_forever, daemon=True).start()
unix_path = os.path.join(d, "ws.sock")
unix_up = UnixUp(unix_path, Upstream)
threading.Thread(target=unix_up.serve_forever, daemon=True).start()

jwt_secret = os.urandom(32)


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


with open(os.path.join(d, "jwks.json"), "w") as fh:
    json.dump({"keys": [{"kty": "oct", "kid": "k1", "alg": "HS256", "k": b64u(jwt_secret)}]}, fh)


def jwt(claims):
    head = b64u(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    body = b64u(json.dumps(claims).encode())
    sig = hmac.new(jwt_secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64u(sig)}"


port = free_port()
tls_port = free_port()
cert_path, key_path = os.path.join(d, "gw.crt"), os.path.join(d, "gw.key")
_r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                     "ec_paramgen_curve:P-256", "-nodes", "-keyout", key_path, "-out", cert_path,
                     "-days", "2", "-subj", "/CN=localhost",
                     "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                    capture_output=True, text=True, timeout=30)
assert _r.returncode == 0, _r.stderr
pools = [f"tcp http://127.0.0.1:{tcp_up.server_address[1]}", f"unix unix:{unix_path}",
         f"dead unix:{d}/nobody.sock"]
routes = ["/ws pool=tcp websocket=on headers=ws", "/denied pool=tcp websocket=on deny=127.0.0.0/8",
          "/uws pool=unix websocket=on rewrite=/",
          "/plain pool=tcp", "/private pool=tcp websocket=on auth=required",
          "/limited pool=tcp websocket=on rate=2/m", "/gone pool=dead websocket=on"]


def config(extra_routes=(), max_conn=4, idle=2):
    text = (f'[public]\nlisten = ["127.0.0.1:{port}"]\nweb_root = "{d}"\n'
            f'[proxy]\npools = {json.dumps(pools)}\n'
            f'routes = {json.dumps(routes + list(extra_routes))}\n'
            'header_rules = ["ws request add X-Added by-gateway", "ws request remove X-Drop", '
            '"ws response set X-Frame-Options DENY"]\n'
            f'websocket_max_connections = {max_conn}\nwebsocket_idle_timeout_seconds = {idle}\n'
            f'[auth]\njwks_file = "{d}/jwks.json"\njwt_issuers = ["https://idp.test"]\n'
            'api_key_verifier = ""\n'
            f'[tls]\nlisten = ["127.0.0.1:{tls_port}"]\ncertificate_file = "{cert_path}"\n'
            f'key_file = "{key_path}"\n')
    return write_config(os.path.join(d, "gatewayd.conf"), "gatewayd", rundir, d, text)


conf = config()
gw = Daemon("gatewayd", conf, rundir)
t.ok(gw.wait_ready(), "gatewayd starts", gw.output())


def connect(path, headers=None, key=None, first=b"", tls=False):
    """Opens a WebSocket through the gateway (tls: wss:// on the [tls] listener): (status,
    headers, Frames or None, socket)."""
    s = socket.create_connection(("127.0.0.1", tls_port if tls else port), timeout=10)
    if tls:
        ctx = ssl.create_default_context(cafile=cert_path)
        s = ctx.wrap_socket(s, server_hostname="localhost")
    key = key or base64.b64encode(os.urandom(16)).decode()
    h = {"Host": f"127.0.0.1:{port}", "Upgrade": "websocket", "Connection": "Upgrade",
         "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13"}
    h.update(headers or {})
    req = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items() if v is not None)
    s.sendall(req.encode() + b"\r\n" + first)
    line, rh, rest = read_head(s)
    status = int(line.split(" ")[1])
    if status != 101:
        n = int(rh.get("content-length", "0"))
        while len(rest) < n:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        rh["body"] = rest.decode("utf-8", "replace")
        s.close()
        return status, rh, None, None
    return status, rh, Frames(s, mask=True, pending=rest), s


def error_code(rh):
    try:
        return json.loads(rh["body"])["error"]["code"]
    except (ValueError, KeyError):
        return None


def open_count():
    st, _, body = request(gw.sock, "GET", "/metrics")
    for line in body.decode().splitlines():
        if line.startswith("strata_gateway_websocket_connections "):
            return float(line.split()[1])
    return None


def total_count():
    st, _, body = request(gw.sock, "GET", "/metrics")
    for line in body.decode().splitlines():
        if line.startswith("strata_gateway_websocket_connections_total "):
            return float(line.split()[1])
    return None


def eof_within(s, seconds):
    """True when the peer closes the socket within `seconds` (frames before it are skipped)."""
    s.settimeout(seconds)
    try:
        while s.recv(65536):
            pass
        return True
    except socket.timeout:
        return False
    except OSError:
        return True


# Echo over TCP, with the Accept key the upstream computed for the client's key.
key = base64.b64encode(os.urandom(16)).decode()
st, rh, f, s = connect("/ws/echo1", {"Sec-WebSocket-Protocol": "chat, superchat",
                                     "X-Drop": "secret"}, key=key)
t.ok(st == 101 and rh.get("sec-websocket-accept") == accept_key(key) and
     rh.get("upgrade", "").lower() == "websocket" and "upgrade" in rh.get("connection", "").lower(),
     "handshake through the gateway: 101 with the upstream's Sec-WebSocket-Accept", rh)
t.ok(rh.get("sec-websocket-protocol") == "chat" and len(rh.get("x-request-id", "")) > 0,
     "the chosen subprotocol comes back, with X-Request-Id", rh)
up = seen["/ws/echo1"][-1]
t.ok(up.get("sec-websocket-key") == key and up.get("sec-websocket-version") == "13" and
     up.get("sec-websocket-protocol") == "chat, superchat" and
     up.get("upgrade", "").lower() == "websocket" and up.get("connection", "").lower() == "upgrade",
     "Sec-WebSocket-* and the upgrade headers reach the upstream", up)
t.ok(up.get("x-added") == "by-gateway" and "x-drop" not in up and
     rh.get("x-frame-options") == "DENY", "the route's header rules apply both ways", (up, rh))
t.ok(up.get("x-strata-caller") == "anonymous" and "x-forwarded-for" in up and
     len(up.get("x-request-id", "")) > 0, "the upgrade request carries the gateway's headers", up)
f.send(0x1, b"hello gateway")
t.ok(f.recv() == (0x1, b"hello gateway"), "a text message echoes over TCP")
# wss:// on the TLS listener: libmicrohttpd runs it, but its own forwarding of upgraded TLS
# connections moves 4 bytes per loop turn (0.9.75), so a TlsTunnel carries them instead.
tkey = base64.b64encode(os.urandom(16)).decode()
st_tls, rh_tls, f_tls, s_tls = connect("/ws/tls", key=tkey, tls=True)
t.ok(st_tls == 101 and rh_tls.get("sec-websocket-accept") == accept_key(tkey) and
     rh_tls.get("x-frame-options") == "DENY" and len(rh_tls.get("x-request-id", "")) > 0,
     "wss:// handshake on the TLS listener: 101 with the upstream's accept key", rh_tls)
f_tls.send(0x1, b"hello over tls")
t.ok(f_tls.recv() == (0x1, b"hello over tls"), "wss://: a text message echoes")
big_tls = os.urandom(3 * 1024 * 1024 + 5)
t0 = time.monotonic()
f_tls.send(0x2, big_tls)
op, back = f_tls.recv()
t.ok(op == 0x2 and back == big_tls and time.monotonic() - t0 < 10,
     "wss://: a 3 MiB binary message goes up and comes back whole",
     (len(back), time.monotonic() - t0))
f_tls.send(0x8, struct.pack("!H", 1000))
op, payload = f_tls.recv()
t.ok(op == 0x8 and eof_within(s_tls, 5), "wss://: a close handshake ends the connection", payload)
s_tls.close()
st_tls, rh_tls, f_tls, s_tls = connect("/ws/bye", tls=True)
msgs = []
try:
    msgs.append(f_tls.recv())
    msgs.append(f_tls.recv())
    f_tls.recv()
    closed = False
except (EOFError, OSError):
    closed = True
t.ok(msgs == [(0x1, b"bye"), (0x8, struct.pack("!H", 1000))] and closed,
     "wss://: the upstream closes, the client gets its last frames and then the end", msgs)
s_tls.close()


def https_status(path):
    ctx = ssl.create_default_context(cafile=cert_path)
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", tls_port), timeout=10),
                         server_hostname="localhost") as hs:
        hs.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                   .encode())
        return int(read_head(hs)[0].split(" ")[1])


t.ok(https_status("/healthz") == 200, "the TLS listener still serves plain HTTPS afterwards")
big = os.urandom(3 * 1024 * 1024 + 17)
f.send(0x2, big)
op, back = f.recv()
t.ok(op == 0x2 and back == big, "a 3 MiB binary message goes up and comes back whole", len(back))
t.ok(wait_until(lambda: open_count() == 1), "the open connections gauge counts it", open_count())
f.send(0x8, struct.pack("!H", 1000))
op, payload = f.recv()
t.ok(op == 0x8 and eof_within(s, 5), "a close handshake ends the connection, both sides", payload)
s.close()
t.ok(wait_until(lambda: open_count() == 0), "the gauge goes back to 0", open_count())

# Unix-socket upstream (rewrite applies), the client's first frame in the handshake's packet.
st, rh, f, s = connect("/uws/echo2", first=frame(0x1, b"early bird", True))
t.ok(st == 101 and f.recv() == (0x1, b"early bird"),
     "unix upstream: a frame sent with the handshake is echoed", rh)
t.ok("/echo2" in seen, "rewrite= applies to the upgrade request", list(seen))
f.send(0x1, b"x" * 70000)
t.ok(f.recv() == (0x1, b"x" * 70000), "unix upstream: a 70000-byte message echoes")
s.close()

# The upstream's first frame in the 101's packet, then the upstream closes.
st, rh, f, s = connect("/ws/hello")
t.ok(st == 101 and f.recv() == (0x1, b"hello"), "a frame sent with the 101 reaches the client")
s.close()
st, rh, f, s = connect("/ws/bye")
msgs = []
try:
    msgs.append(f.recv())
    msgs.append(f.recv())
    f.recv()
    closed = False
except EOFError:
    closed = True
t.ok(msgs == [(0x1, b"bye"), (0x8, struct.pack("!H", 1000))] and closed,
     "the upstream closes: the client gets its last frames, then the end", msgs)
s.close()

# The client goes away without a close frame: the upstream's connection is closed too.
st, rh, f, s = connect("/ws/watch1")
f.send(0x1, b"ping")
f.recv()
s.close()
t.ok(wait_until(lambda: "/ws/watch1" in gone, timeout=5), "the client closes: the upstream sees it")

# A refusal of the upstream is relayed as a normal answer.
st, rh, _, _ = connect("/ws/refuse")
t.ok(st == 403 and json.loads(rh["body"]) == {"upstream": "says no"} and
     rh.get("x-why") == "policy", "a non-101 answer of the upstream is relayed", (st, rh))

# Routes without websocket=on, malformed handshakes, members that do not answer.
n_plain = len(seen.get("/plain/x", []))
st, rh, _, _ = connect("/plain/x")
t.ok(st == 400 and error_code(rh) == "websocket_not_allowed" and
     len(seen.get("/plain/x", [])) == n_plain, "a route without websocket=on: 400, not sent up",
     (st, rh))
st, rh, _, _ = connect("/ws/nokey", {"Sec-WebSocket-Key": None})
t.ok(st == 400 and error_code(rh) == "bad_websocket_handshake" and "/ws/nokey" not in seen,
     "a handshake without Sec-WebSocket-Key: 400", (st, rh))
st, rh, _, _ = connect("/denied/x")
t.ok(st == 403 and error_code(rh) == "forbidden" and "/denied/x" not in seen,
     "the route's address filter refuses the handshake: 403", (st, rh))
st, rh, _, _ = connect("/gone/x")
t.ok(st == 502 and error_code(rh) == "bad_gateway", "an unreachable member: 502", (st, rh))

# Auth: required without credentials is refused before anything goes up; a JWT becomes the
# identity, whatever X-Strata-Caller the client forged.
st, rh, _, _ = connect("/private/a")
t.ok(st == 401 and error_code(rh) == "unauthenticated" and "/private/a" not in seen,
     "auth=required without a token: 401 before any upgrade", (st, rh))
token = jwt({"sub": "alice", "iss": "https://idp.test", "exp": int(time.time()) + 600,
             "scope": "notify:read"})
st, rh, f, s = connect("/private/b", {"Authorization": "Bearer " + token,
                                      "X-Strata-Caller": "user=1; scopes=strata:admin"})
up = seen.get("/private/b", [{}])[-1]
t.ok(st == 101 and up.get("x-strata-caller", "").startswith("jwt; sub=alice; iss=") and
     "authorization" not in up, "a verified JWT goes up as X-Strata-Caller on the upgrade", up)
f.send(0x1, b"me")
t.ok(f.recv() == (0x1, b"me"), "the authenticated connection echoes")
s.close()

# rate=2/m: the third handshake is refused.
codes = []
for _ in range(3):
    st, rh, f, s = connect("/limited/x")
    codes.append(st)
    if s:
        s.close()
t.ok(codes == [101, 101, 429], "rate= applies to handshakes", codes)

# The idle timeout (2 s here): a quiet connection is closed, a busy one is not.
st, rh, quiet, qs = connect("/ws/quiet")
st2, rh2, busy, bs = connect("/ws/busy")
alive = True
for i in range(6):
    time.sleep(0.5)
    busy.send(0x1, b"tick")
    alive = alive and busy.recv() == (0x1, b"tick")
t.ok(alive, "a connection with traffic outlives the idle timeout")
t.ok(eof_within(qs, 3), "a connection idle past websocket_idle_timeout_seconds is closed")
qs.close()
bs.close()
t.ok(wait_until(lambda: open_count() == 0), "both are gone from the gauge", open_count())

# At most 4 connections (handshakes included): the fifth gets 503, a freed place is reused.
conns = [connect(f"/ws/many{i}") for i in range(4)]
t.ok(all(c[0] == 101 for c in conns), "4 connections open", [c[0] for c in conns])
st, rh, _, _ = connect("/ws/many5")
t.ok(st == 503 and error_code(rh) == "websocket_limit", "the fifth is refused: 503", (st, rh))
conns[0][3].close()
t.ok(wait_until(lambda: open_count() == 3), "a closed one frees its place", open_count())
st, rh, f, s = connect("/ws/many6")
t.ok(st == 101, "a new connection takes the freed place", st)
for c in conns[1:] + [(st, rh, f, s)]:
    c[3].close()
t.ok(wait_until(lambda: open_count() == 0), "all closed", open_count())

# A reload with a connection open: it keeps working, the new routes serve new ones.
st, rh, f, s = connect("/ws/reload")
f.send(0x1, b"before")
f.recv()
config(extra_routes=["/new pool=tcp websocket=on"], max_conn=8, idle=30)
gw.signal(signal.SIGHUP)


ok_new, echoes = False, True
deadline = time.monotonic() + 5
while not ok_new and time.monotonic() < deadline:
    f.send(0x1, b"during")  # traffic keeps it within the old 2 s idle timeout
    echoes = echoes and f.recv() == (0x1, b"during")
    st, _, _, s2 = connect("/new/x")
    if s2:
        s2.close()
    ok_new = st == 101
    time.sleep(0.2)
t.ok(ok_new, "after a reload the new route upgrades", gw.output()[-2000:])
f.send(0x1, b"after")
t.ok(echoes and f.recv() == (0x1, b"after"),
     "a connection opened before the reload still echoes after it")
total = total_count()
t.ok(total is not None and total >= 15, "the total counter counts upgraded connections", total)

# Stopping the daemon with connections open (plain and TLS): it stops at once, both
# clients see the end.
st_tls, _, f_tls, s_tls = connect("/ws/stop", tls=True)
f_tls.send(0x1, b"still here")
t.ok(st_tls == 101 and f_tls.recv() == (0x1, b"still here"), "a wss:// connection is open")
rc, secs = gw.stop()
t.ok(rc == 0 and secs < 5, "gatewayd stops with upgraded connections open", (rc, secs))
t.ok(eof_within(s, 3), "the open connection is closed by the stop")
t.ok(eof_within(s_tls, 3), "... and so is the wss:// one")
s.close()
s_tls.close()
tcp_up.shutdown()
unix_up.shutdown()
t.done()
