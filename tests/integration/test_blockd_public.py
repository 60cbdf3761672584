#!/usr/bin/env python3
"""strata-blockd's public TCP listener (the content engine) against the real daemon: signed
links to multi-block files served byte-exact with sendfile, ranges across blocks, multipart,
HEAD, 304, keep-alive and pipelining, HTTP/1.0, bad requests and path traversal, slow clients
timed out, GC removal seen at once despite the serving cache, and per-route metrics."""

import hashlib
import http.client
import json
import os
import re
import socket
import time

from harness import (Daemon, Tap, UnixHTTPConnection, free_port, tempdir, wait_until,
                     write_config)

t = Tap()
d = tempdir()
rundir = os.path.join(d, "run")
port = free_port()
key_file = os.path.join(d, "url.key")
with open(key_file, "wb") as f:
    f.write(os.urandom(32).hex().encode())
conf = write_config(os.path.join(d, "blockd.conf"), "blockd", rundir, d,
                    "[http]\nidle_timeout = 2\nconnection_limit = 8\n"
                    "[gc]\ngrace_seconds = 0\n"
                    f'[signing]\nkey_file = "{key_file}"\n'
                    f'[public]\nlisten = ["127.0.0.1:{port}"]\n')
blockd = Daemon("blockd", conf, rundir)
t.ok(blockd.wait_ready(), "blockd starts", blockd.output())
MiB = 1024 * 1024


def control(method, path, body=None):
    c = UnixHTTPConnection(blockd.sock, timeout=30)
    c.request(method, path, body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    out = r.status, r.read()
    c.close()
    return out


def upload(data):
    st, out = control("POST", "/v1/blobs", data)
    assert st == 201, out
    cid = json.loads(out)["id"]
    st, out = control("POST", "/v1/sign", json.dumps({"id": cid, "ttl": 600}))
    assert st == 200, out
    return cid, json.loads(out)["url"]


def raw(data, timeout=5, read_until_close=True):
    """Sends bytes to the public port; returns everything read until close or timeout."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    out = b""
    try:
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            out += chunk
            if not read_until_close:
                break
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    return out


def responses(stream):
    """Splits a byte stream of HTTP/1.1 responses (with Content-Length) into (status, headers,
    body) tuples."""
    out = []
    while stream:
        head, sep, rest = stream.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
        n = int(headers.get("content-length", "0"))
        out.append((status, headers, rest[:n]))
        stream = rest[n:]
    return out


data = os.urandom(9 * MiB + 777)  # three blocks
cid, url = upload(data)
small = b"a small object, served inline with its headers"
sid, surl = upload(small)

c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
c.request("GET", url)
r = c.getresponse()
body = r.read()
etag = r.getheader("ETag")
t.ok(r.status == 200 and body == data and r.getheader("Content-Length") == str(len(data))
     and etag == f'"{hashlib.sha256(data).hexdigest()}"' and r.getheader("Date")
     and r.getheader("Accept-Ranges") == "bytes", "a three-block file, byte-exact",
     (r.status, r.getheaders()))
# Keep-alive: the same connection serves more requests.
for i in range(20):
    c.request("GET", surl)
    r = c.getresponse()
    if r.read() != small or r.status != 200:
        break
t.ok(i == 19, "keep-alive: 20 more requests on one connection", i)
c.request("HEAD", url)
r = c.getresponse()
t.ok(r.status == 200 and r.read() == b"" and r.getheader("Content-Length") == str(len(data)),
     "HEAD: the length, no body", r.getheaders())
c.request("GET", url, headers={"If-None-Match": etag})
r = c.getresponse()
t.ok(r.status == 304 and r.read() == b"" and r.getheader("Content-Length") is None,
     "If-None-Match: 304 without a body", r.getheaders())
a, b = 4 * MiB - 3, 8 * MiB + 2  # spans all three blocks
c.request("GET", url, headers={"Range": f"bytes={a}-{b}"})
r = c.getresponse()
t.ok(r.status == 206 and r.read() == data[a:b + 1]
     and r.getheader("Content-Range") == f"bytes {a}-{b}/{len(data)}",
     "a range across three blocks: 206", r.getheaders())
c.request("GET", url, headers={"Range": f"bytes=0-1,{4 * MiB - 1}-{4 * MiB},-3"})
r = c.getresponse()
mbody = r.read()
boundary = r.getheader("Content-Type", "").split("boundary=")[-1].encode()
parts = [p for p in mbody.split(b"--" + boundary) if p.strip() not in (b"", b"--")]
want = [data[0:2], data[4 * MiB - 1:4 * MiB + 1], data[-3:]]
t.ok(r.status == 206 and len(parts) == 3
     and all(p.partition(b"\r\n\r\n")[2][:len(w)] == w for p, w in zip(parts, want))
     and r.getheader("Content-Length") == str(len(mbody)), "multipart ranges", r.getheaders())
c.request("GET", url, headers={"Range": f"bytes={len(data)}-"})
r = c.getresponse()
r.read()
t.ok(r.status == 416 and r.getheader("Content-Range") == f"bytes */{len(data)}", "416",
     r.status)
c.close()

# Pipelining: three requests in one send, answered in order on the same connection.
path_s, path_l = surl.encode(), url.encode()
out = raw(b"GET " + path_s + b" HTTP/1.1\r\nHost: x\r\n\r\n"
          b"GET " + path_l + b" HTTP/1.1\r\nHost: x\r\nRange: bytes=5-9\r\n\r\n"
          b"GET " + path_s + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
rs = responses(out)
t.ok([x[0] for x in rs] == [200, 206, 200] and rs[0][2] == small and rs[1][2] == data[5:10]
     and rs[2][2] == small and rs[2][1].get("connection") == "close",
     "pipelined requests answered in order, then closed", [(x[0], x[1]) for x in rs])
out = raw(b"GET " + path_s + b" HTTP/1.0\r\n\r\n")
rs = responses(out)
t.ok(len(rs) == 1 and rs[0][0] == 200 and rs[0][2] == small, "HTTP/1.0 without Host, closed",
     out[:200])

# Bad requests get an answer and the daemon keeps serving.
for name, req, code in [
        ("garbage", b"\x16\x03\x01 hello\r\n\r\n", 400),
        ("no Host on 1.1", b"GET " + path_s + b" HTTP/1.1\r\n\r\n", 400),
        ("smuggling: CL and TE", b"GET " + path_s + b" HTTP/1.1\r\nHost: x\r\n"
         b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("huge header", b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20000 + b"\r\n\r\n", 431),
        ("HTTP/2.0", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        ("bad escape", b"GET /c/%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400)]:
    out = raw(req)
    t.ok(out.startswith(b"HTTP/1.1 %d" % code), f"{name}: {code}", out[:120])
for traversal in ["/c/..%2f..%2fetc%2fpasswd", "/c/../../etc/passwd", "/c/%2e%2e",
                  "/c/" + cid + "%2f..?exp=1&sig=00"]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", traversal)
    r = c.getresponse()
    rb = r.read()
    c.close()
    t.ok(r.status in (400, 403, 404) and b"root:" not in rb, f"path traversal {traversal}",
         (r.status, rb[:100]))
forged = url[:-1] + ("0" if url[-1] != "0" else "1")
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
c.request("GET", forged)
r = c.getresponse()
t.ok(r.status == 403 and b"bad_signature" in r.read(), "a forged link: 403", r.status)
c.close()

# Slow clients: half a request line, or an idle keep-alive connection, are closed after
# http.idle_timeout (2 s; the sweep runs every second).
slow = socket.create_connection(("127.0.0.1", port), timeout=10)
slow.sendall(b"GET /c/")
idle = socket.create_connection(("127.0.0.1", port), timeout=10)
started = time.monotonic()
closed = []
for s in (slow, idle):
    try:
        closed.append(s.recv(100) == b"")
    except (socket.timeout, ConnectionResetError):
        closed.append(False)
    s.close()
elapsed = time.monotonic() - started
t.ok(closed == [True, True] and elapsed < 6, "slow and idle connections are closed",
     (closed, elapsed))

# More connections than http.connection_limit (8): the extra ones are closed, the daemon
# serves again once they are gone.
held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(8)]
time.sleep(0.2)
out = raw(b"GET " + path_s + b" HTTP/1.1\r\nHost: x\r\n\r\n", timeout=3)
t.ok(out == b"", "a connection over the limit is closed unanswered", out[:100])
for s in held:
    s.close()
ok = wait_until(lambda: raw(b"GET " + path_s + b" HTTP/1.1\r\nHost: x\r\nConnection: close"
                            b"\r\n\r\n", timeout=3).startswith(b"HTTP/1.1 200"), timeout=5)
t.ok(ok, "and serves again below the limit")

# A client that stops reading a large body does not hold up the others.
stuck = socket.create_connection(("127.0.0.1", port), timeout=10)
stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
stuck.sendall(b"GET " + path_l + b" HTTP/1.1\r\nHost: x\r\n\r\n")
time.sleep(0.3)
out = raw(b"GET " + path_s + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
t.ok(out.startswith(b"HTTP/1.1 200") and out.endswith(small), "others are served meanwhile",
     out[:100])
stuck.close()

# Metrics: per route, with the bytes sent.
c = UnixHTTPConnection(blockd.sock, timeout=10)
c.request("GET", "/metrics")
metrics = c.getresponse().read().decode()
c.close()
m = re.search(r'strata_http_response_body_bytes_total\{route="/c/\{id\}"\} (\S+)', metrics)
t.ok('strata_http_requests_total{route="/c/{id}",method="GET",code="200"}' in metrics
     and 'strata_http_requests_total{route="/c/{id}",method="GET",code="206"}' in metrics
     and 'strata_http_request_duration_seconds_count{route="/c/{id}"}' in metrics
     and m and float(m.group(1)) >= len(data) + 20 * len(small),
     "metrics by route and status, with body bytes", m and m.group(0))

# GC removes the small file (unmarked, grace 0): the link stops working at once, although
# the file was served from the cache a moment ago.
time.sleep(1.1)  # the content must be older than the cycle's start
st, out = control("POST", "/v1/gc/start")
st2, _ = control("POST", "/v1/gc/mark", json.dumps({"manifests": [cid]}))
st3, out = control("POST", "/v1/gc/sweep", json.dumps({"dry_run": False}))
sweep = json.loads(out)
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
c.request("GET", surl)
r = c.getresponse()
r.read()
c.request("GET", url, headers={"Range": "bytes=0-9"})
r2 = c.getresponse()
t.ok(st3 == 200 and sweep["manifests_removed"] == 1 and r.status == 404
     and r2.status == 206 and r2.read() == data[:10],
     "after a sweep the removed file is gone (404), the marked one still served",
     (sweep, r.status, r2.status))
c.close()

rc, _ = blockd.stop()
t.ok(rc == 0, "stops cleanly", blockd.output())
t.done()
