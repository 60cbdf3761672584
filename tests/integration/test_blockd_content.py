#!/usr/bin/env python3
"""strata-blockd's whole-file path against the real daemon: POST /v1/blobs splits a body into
4 MiB blocks (deduplicated), GET/HEAD /v1/content/{id} serves it with ETag, Last-Modified,
304/412, single and multiple ranges (206, multipart/byteranges) and 416."""

import hashlib
import hmac
import http.client
import json
import os
import socket

from harness import (Daemon, Tap, UnixHTTPConnection, binary, free_port, raw_exchange, run,
                     tempdir,
                     write_config)

t = Tap()
d = tempdir()
rundir = os.path.join(d, "run")
public_port = free_port()
KEY = b"k" * 40
key_file = os.path.join(d, "url.key")
with open(key_file, "wb") as f:
    f.write(KEY)
conf = write_config(os.path.join(d, "blockd.conf"), "blockd", rundir, d,
                    "[upload]\nmax_blob_bytes = 20000000\n"
                    f'[signing]\nkey_file = "{key_file}"\n'
                    f'[public]\nlisten = ["127.0.0.1:{public_port}"]\n')
blockd = Daemon("blockd", conf, rundir)
t.ok(blockd.wait_ready(), "blockd starts", blockd.output())
MiB = 1024 * 1024


def call(method, path, body=None, headers=None):
    c = UnixHTTPConnection(blockd.sock, timeout=30)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    out = (r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    c.close()
    return out


data = os.urandom(9 * MiB + 12345)  # three blocks: 4 MiB, 4 MiB, the rest
st, _, out = call("POST", "/v1/blobs", body=data)
blob = json.loads(out)
t.ok(st == 201 and blob["size"] == len(data) and blob["sha256"] == hashlib.sha256(data).hexdigest()
     and [b["size"] for b in blob["blocks"]] == [4 * MiB, 4 * MiB, MiB + 12345]
     and all(b["sha256"] == hashlib.sha256(data[i * 4 * MiB:(i + 1) * 4 * MiB]).hexdigest()
             for i, b in enumerate(blob["blocks"])), "POST /v1/blobs splits into blocks", out[:400])
cid = blob["id"]

st, _, out = call("POST", "/v1/blobs", body=data)
t.ok(st == 201 and json.loads(out)["id"] == cid, "the same body gives the same id (dedupe)")
st, _, out = call("POST", "/v1/blocks/missing",
                  body=json.dumps({"blocks": [b["sha256"] for b in blob["blocks"]]}))
t.ok(json.loads(out) == {"missing": []}, "the blob's blocks are stored", out)

st, h, body = call("GET", f"/v1/content/{cid}")
etag = f'"{blob["sha256"]}"'
t.ok(st == 200 and body == data and h["etag"] == etag and h["accept-ranges"] == "bytes"
     and h["content-length"] == str(len(data)) and "last-modified" in h
     and "immutable" in h["cache-control"], "GET serves the whole file with ETag",
     (st, h, len(body)))
st, h, body = call("HEAD", f"/v1/content/{cid}")
t.ok(st == 200 and body == b"" and h["content-length"] == str(len(data)), "HEAD", (st, h))

st, h, body = call("GET", f"/v1/content/{cid}", headers={"If-None-Match": etag})
t.ok(st == 304 and body == b"" and h["etag"] == etag, "If-None-Match: 304", (st, h))
st, h, _ = call("GET", f"/v1/content/{cid}", headers={"If-Modified-Since": h["last-modified"]})
t.ok(st == 304, "If-Modified-Since: 304", st)
st, _, body = call("GET", f"/v1/content/{cid}", headers={"If-Match": '"other"'})
t.ok(st == 412 and b"precondition_failed" in body, "If-Match mismatch: 412", (st, body))

# A range across the first block boundary.
a, b = 4 * MiB - 10, 4 * MiB + 9
st, h, body = call("GET", f"/v1/content/{cid}", headers={"Range": f"bytes={a}-{b}"})
t.ok(st == 206 and body == data[a:b + 1] and h["content-range"] == f"bytes {a}-{b}/{len(data)}",
     "single range across blocks: 206", (st, h))
st, h, body = call("GET", f"/v1/content/{cid}", headers={"Range": "bytes=-5"})
t.ok(st == 206 and body == data[-5:], "suffix range", (st, h))
st, h, body = call("GET", f"/v1/content/{cid}", headers={"Range": "bytes=0-3, 100-103, -2"})
ctype = h.get("content-type", "")
boundary = ctype.split("boundary=")[-1]
parts = [p for p in body.split(b"--" + boundary.encode()) if p.strip() not in (b"", b"--")]
want = [(0, 3), (100, 103), (len(data) - 2, len(data) - 1)]
ok = st == 206 and ctype.startswith("multipart/byteranges") and len(parts) == 3
for part, (x, y) in zip(parts, want):
    head, _, payload = part.partition(b"\r\n\r\n")
    ok = ok and f"Content-Range: bytes {x}-{y}/{len(data)}".encode() in head
    ok = ok and payload[:y - x + 1] == data[x:y + 1]
t.ok(ok and h["content-length"] == str(len(body)), "multiple ranges: multipart/byteranges",
     (st, h, body[:300]))
st, h, body = call("GET", f"/v1/content/{cid}", headers={"Range": f"bytes={len(data)}-"})
t.ok(st == 416 and h["content-range"] == f"bytes */{len(data)}", "unsatisfiable range: 416",
     (st, h))
st, _, body = call("GET", f"/v1/content/{cid}", headers={"Range": "bytes=oops"})
t.ok(st == 200 and len(body) == len(data), "a malformed Range is ignored: 200", st)
st, _, body = call("GET", f"/v1/content/{cid}",
                   headers={"Range": "bytes=0-0", "If-Range": '"stale"'})
t.ok(st == 200 and len(body) == len(data), "If-Range with another ETag: the whole file", st)

small = b"hello, one block"
st, _, out = call("POST", "/v1/blobs", body=small)
sid = json.loads(out)["id"]
st, h, body = call("GET", f"/v1/content/{sid}", headers={"Range": "bytes=7-9"})
t.ok(st == 206 and body == small[7:10], "one-block file range (sendfile path)", (st, body))
st, _, out = call("POST", "/v1/blobs", body=b"")
eid = json.loads(out)["id"]
st, h, body = call("GET", f"/v1/content/{eid}")
t.ok(st == 200 and body == b"" and h["content-length"] == "0", "empty file", (st, h))

st, _, body = call("GET", "/v1/content/" + "0" * 64)
t.ok(st == 404, "unknown id: 404", st)
st, _, body = call("GET", "/v1/content/NOTHEX")
t.ok(st == 400 and b"invalid_id" in body, "malformed id: 400", st)

reply = raw_exchange(blockd.sock, b"POST /v1/blobs HTTP/1.1\r\nHost: x\r\nContent-Length: 20000001"
                     b"\r\nConnection: close\r\n\r\n")
t.ok(reply.startswith(b"HTTP/1.1 413"), "a blob over upload.max_blob_bytes: 413", reply[:100])

# Dedupe, as an operator sees it: a second file sharing two blocks with the first.
st, _, out = call("POST", "/v1/blobs", body=data[:8 * MiB])
t.ok(st == 201 and len(json.loads(out)["blocks"]) == 2, "a file made of stored blocks")
r = run([binary("stratactl"), "--runtime-dir", rundir, "--json", "blocks", "stats"])
stats = json.loads(r.stdout) if r.returncode == 0 else {}
physical = len(data) + len(small)
logical = physical + 8 * MiB
t.ok(stats.get("blocks") == 4 and stats.get("bytes") == physical and stats.get("files") == 4
     and stats.get("logical_bytes") == logical
     and abs(stats.get("dedupe_ratio", 0) - logical / physical) < 1e-9,
     "stratactl blocks stats: blocks, bytes, files, dedupe ratio", (r, stats))
r = run([binary("stratactl"), "--runtime-dir", rundir, "blocks", "stats"])
t.ok(r.returncode == 0 and r.stdout.startswith("BLOCKS") and "1.89x" in r.stdout,
     "stratactl blocks stats as a table", r)

# A client that goes away mid-upload leaves no temporary file behind.
s = socket.socket(socket.AF_UNIX)
s.connect(blockd.sock)
s.sendall(b"POST /v1/blobs HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n" +
          os.urandom(6 * MiB))
s.close()
tmp = os.path.join(d, "blocks", "tmp")
import time
deadline = time.time() + 5
while time.time() < deadline and os.listdir(tmp):
    time.sleep(0.05)
t.ok(os.listdir(tmp) == [], "an aborted upload leaves no partial block", os.listdir(tmp))
st, _, _ = call("GET", f"/v1/content/{sid}")
t.ok(st == 200, "and blockd keeps serving")
# Signed public links.
st, _, out = call("POST", "/v1/sign", body=json.dumps({"id": sid, "ttl": 60}))
signed = json.loads(out)
t.ok(st == 200 and signed["url"].startswith(f"/c/{sid}?exp="), "POST /v1/sign", out)
st, _, body = call("GET", signed["url"])
t.ok(st == 200 and body == small, "a signed link serves the content", (st, body))
exp = signed["expires"]
mac = hmac.new(KEY, f"GET\n/c/{sid}\n{exp}".encode(), hashlib.sha256).hexdigest()
t.ok(signed["url"].endswith("&sig=" + mac), "the signature is HMAC-SHA256 over method, path, exp")
forged = signed["url"][:-1] + ("0" if signed["url"][-1] != "0" else "1")
pub = http.client.HTTPConnection("127.0.0.1", public_port, timeout=10)
pub.request("GET", signed["url"])
pr = pub.getresponse()
pbody = pr.read()
t.ok(pr.status == 200 and pbody == small, "the signed link works on the public TCP listener",
     (pr.status, pbody))
pub.request("GET", f"/v1/content/{sid}")
pr = pub.getresponse()
pr.read()
t.ok(pr.status == 404, "the content API is not exposed on TCP", pr.status)
pub.close()
st, _, body = call("GET", forged)
t.ok(st == 403 and b"bad_signature" in body, "a forged signature: 403", (st, body))
st, _, body = call("GET", f"/c/{cid}?exp={exp}&sig={mac}")
t.ok(st == 403, "a signature for another id: 403", st)
past = exp - 3600
old_mac = hmac.new(KEY, f"GET\n/c/{sid}\n{past}".encode(), hashlib.sha256).hexdigest()
st, _, body = call("GET", f"/c/{sid}?exp={past}&sig={old_mac}")
t.ok(st == 403 and b"expired" in body, "an expired link: 403", (st, body))
st, _, body = call("GET", f"/c/{sid}?exp=soon&sig={mac}")
t.ok(st == 400, "a malformed link: 400", st)
st, _, body = call("POST", "/v1/sign", body=json.dumps({"id": sid, "ttl": 0}))
t.ok(st == 400, "ttl out of range: 400", st)
st, _, body = call("POST", "/v1/sign", body=json.dumps({"id": sid, "ttl": "soon"}))
t.ok(st == 400 and b"bad_ttl" in body, "ttl of the wrong type: 400, not 500", (st, body))

# Media types: detected by libmagic at upload, or declared with ?type=, recorded in the
# manifest and sent as Content-Type; documents and scripts are sandboxed.
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"
       b"\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01"
       b"\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
st, _, out = call("POST", "/v1/blobs", body=PNG)
pid = json.loads(out)
st, h, body = call("GET", f"/v1/content/{pid['id']}")
t.ok(pid.get("type") == "image/png" and h.get("content-type") == "image/png"
     and h.get("x-content-type-options") == "nosniff" and "content-security-policy" not in h
     and body == PNG, "a PNG is detected and served as image/png", (pid, h))
html = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>\n"
st, _, out = call("POST", "/v1/blobs", body=html)
st, h, _ = call("GET", f"/v1/content/{json.loads(out)['id']}")
t.ok(h.get("content-type") == "text/html" and "sandbox" in h.get("content-security-policy", ""),
     "uploaded HTML is served sandboxed", h)
st, _, out = call("POST", "/v1/blobs?type=Video/MP4", body=b"not really a video")
vid = json.loads(out)
st, h, mp = call("GET", f"/v1/content/{vid['id']}", headers={"Range": "bytes=0-1,3-4"})
t.ok(vid.get("type") == "video/mp4" and st == 206 and b"Content-Type: video/mp4" in mp,
     "a declared type (?type=) is kept, lowercased, and used in multipart parts",
     (vid, st, mp[:300]))
# Raw: blockd answers (400) before reading the body and may close while it is being sent.
reply = raw_exchange(blockd.sock, b"POST /v1/blobs?type=text/html%0d%0aX-Evil:%201 HTTP/1.1\r\n"
                     b"Host: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx")
t.ok(reply.startswith(b"HTTP/1.1 400") and b"bad_type" in reply,
     "a declared type that is not a media type: 400", reply[:200])

# Garbage collection through the live daemon: with the default grace period nothing this
# young is removed, marked or not.
st, _, out = call("POST", "/v1/gc/start")
t.ok(st == 200 and "epoch" in json.loads(out), "POST /v1/gc/start", out)
st, _, _ = call("POST", "/v1/gc/start")
t.ok(st == 409, "a second start while a cycle runs: 409", st)
st, _, out = call("POST", "/v1/gc/mark", body=json.dumps({"manifests": [cid]}),
                  headers={"Content-Type": "application/json"})
t.ok(st == 200, "POST /v1/gc/mark", out)
st, _, out = call("POST", "/v1/gc/sweep", body=json.dumps({"dry_run": False}),
                  headers={"Content-Type": "application/json"})
st2, _, body = call("GET", f"/v1/content/{sid}")
t.ok(st == 200 and st2 == 200 and body == small, "a sweep keeps young unmarked content", out)

rc, _ = blockd.stop()
t.ok(rc == 0, "stops cleanly")
t.done()
