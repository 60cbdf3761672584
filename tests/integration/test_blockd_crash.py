#!/usr/bin/env python3
"""strata-blockd's crash safety over HTTP: kill -9 of the daemon in the middle of uploads
(POST /v1/blobs, PUT /v1/blocks/{h}, both at once, and at random moments) never leaves a torn
block or manifest visible, and the daemon restarts on the same state dir, clears its temp
files and serves correctly; a write acknowledged with 201 survives the kill."""

import hashlib
import http.client
import json
import os
import random
import signal
import socket
import threading
import time
import traceback

from harness import Daemon, Tap, raw_exchange, request, tempdir, wait_until, write_config

MiB = 1024 * 1024
BLOCK = 4 * MiB
ROUNDS = 5
MIN_ROUNDS = 2  # a scenario stops early (after at least this many) once its time budget is spent
HEX = set("0123456789abcdef")

t = Tap()
d = tempdir()
rundir = os.path.join(d, "run")
conf = write_config(os.path.join(d, "blockd.conf"), "blockd", rundir, d,
                    f'[signing]\nkey_file = "{d}/no-such.key"\n'
                    f'[verify]\nclamav_db_dir = "{d}/no-clamav"\n')
state = os.path.join(d, "blocks")
blockd = None
socks = []


class Abort(Exception):
    """blockd did not come back: already reported, the remaining checks cannot run."""


def start():
    global blockd
    if blockd is not None:
        blockd.log.close()
    blockd = Daemon("blockd", conf, rundir)
    return blockd.wait_ready()


def kill9():
    """SIGKILL; true when the daemon was still running and died of that signal."""
    blockd.proc.send_signal(signal.SIGKILL)  # no-op if it already exited and was reaped
    blockd.proc.wait(5)
    return blockd.proc.returncode == -signal.SIGKILL


def files(sub):
    top = os.path.join(state, sub)
    return sorted(os.path.join(r, f) for r, _, fs in os.walk(top) for f in fs)


def block_path(h, sub="blocks"):
    return os.path.join(state, sub, h[:2], h[2:4], h)


def sha(data):
    return hashlib.sha256(data).hexdigest()


def sha_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            h.update(chunk)
    return h.hexdigest()


def valid_hash(s):
    return len(s) == 64 and set(s) <= HEX


def scan_named(sub):
    """Every file under STATE/sub must be STATE/sub/ab/cd/<hex> with content hashing to <hex>
    and at most 4 MiB. Returns ({hex: size}, problems)."""
    found, problems = {}, []
    for p in files(sub):
        rel = os.path.relpath(p, os.path.join(state, sub)).split(os.sep)
        name = rel[-1]
        if len(rel) != 3 or not valid_hash(name) or rel[:2] != [name[:2], name[2:4]]:
            problems.append(f"unexpected file {p}")
            continue
        size = os.path.getsize(p)
        if size > BLOCK:
            problems.append(f"{p}: {size} bytes, over 4 MiB")
        got = sha_file(p)
        if got != name:
            problems.append(f"torn or wrong content: {p} ({size} bytes) hashes to {got}")
        found[name] = size
    return found, problems


def parse_manifest(text):
    """(size, sha256, [(block, size)]) of a well-formed manifest, else None."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "" or lines[0] != "strata-manifest 1":
        return None
    try:
        k, size = lines[1].split(" ")
        k2, whole = lines[2].split(" ")
        if k != "size" or k2 != "sha256" or not valid_hash(whole):
            return None
        blocks = []
        rest = lines[3:-1]
        if rest and rest[0].startswith("type "):  # optional media type line
            if "/" not in rest[0][5:]:
                return None
            rest = rest[1:]
        for line in rest:
            k, h, n = line.split(" ")
            if k != "block" or not valid_hash(h) or not 0 < int(n) <= BLOCK:
                return None
            blocks.append((h, int(n)))
    except ValueError:
        return None
    if sum(n for _, n in blocks) != int(size):
        return None
    return int(size), whole, blocks


def check_store():
    """Returns (problems, {block hex: size}, {whole-content sha256: manifest id})."""
    blocks, problems = scan_named("blocks")
    manifests, more = scan_named(os.path.join("manifests", "blocks"))
    problems += more
    contents = {}
    for mid in manifests:
        with open(block_path(mid, os.path.join("manifests", "blocks")), "rb") as f:
            m = parse_manifest(f.read().decode(errors="replace"))
        if m is None:
            problems.append(f"manifest {mid} is not well-formed")
            continue
        for h, n in m[2]:
            if h not in blocks:
                problems.append(f"manifest {mid} refers to a missing block {h}")
            elif blocks[h] != n:
                problems.append(f"manifest {mid}: block {h} is {blocks[h]} bytes, not {n}")
        contents[m[1]] = mid
    return problems, blocks, contents


def temp_files():
    return files("tmp") + files(os.path.join("manifests", "tmp"))


def part_sizes():
    sizes = []
    for p in temp_files():
        try:
            if p.endswith(".part"):
                sizes.append(os.path.getsize(p))
        except FileNotFoundError:  # renamed into place (or removed) meanwhile
            pass
    return sorted(sizes)


class Upload:
    """A request whose body is sent piece by piece over a raw socket."""

    def __init__(self, method, path, length):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        socks.append(self.s)
        self.s.settimeout(10)
        self.s.connect(blockd.sock)
        self.s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n"
                       "Connection: close\r\n\r\n".encode())

    def send(self, data, piece=256 * 1024):
        for i in range(0, len(data), piece):
            self.s.sendall(data[i:i + piece])
            time.sleep(0.001)

    def close(self):
        self.s.close()


def put(h, body):
    reply = raw_exchange(blockd.sock, f"PUT /v1/blocks/{h} HTTP/1.1\r\nHost: x\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                         + body, timeout=30)
    head, _, payload = reply.partition(b"\r\n\r\n")
    try:
        return int(head.split()[1]), json.loads(payload)
    except (IndexError, ValueError):
        return None, reply[:300]


def post_blob(body):
    st, _, out = request(blockd.sock, "POST", "/v1/blobs", body=body, timeout=30)
    try:
        return st, json.loads(out)
    except ValueError:
        return st, out[:300]


def missing(hashes):
    st, _, out = request(blockd.sock, "POST", "/v1/blocks/missing",
                         body=json.dumps({"blocks": hashes}))
    return st, json.loads(out)


def blob_ok(blob, body):
    return (isinstance(blob, dict) and blob.get("size") == len(body)
            and blob.get("sha256") == sha(body)
            and [b["sha256"] for b in blob.get("blocks", [])]
            == [sha(body[i:i + BLOCK]) for i in range(0, len(body), BLOCK)])


def served(cid, body):
    try:
        st, _, out = request(blockd.sock, "GET", f"/v1/content/{cid}", timeout=30)
    except (OSError, http.client.HTTPException) as e:
        return False, repr(e)[:300]
    return st == 200 and len(out) == len(body) and sha(out) == sha(body), (st, len(out))


def check_after_kill(label, absent_blocks=(), absent_contents=()):
    problems, blocks, contents = check_store()
    t.ok(not problems, f"{label}: after kill -9 every block and manifest hashes to its name, "
         "is at most 4 MiB, and manifests refer only to stored blocks", "\n".join(problems))
    stray = [h for h in absent_blocks if h in blocks] + [c for c in absent_contents
                                                         if c in contents]
    t.ok(not stray, f"{label}: nothing of the interrupted upload is visible", stray)


def check_restart(label):
    ok = start()
    t.ok(ok, f"{label}: restarts on the same state dir", blockd.output())
    left = temp_files()
    t.ok(ok and left == [], f"{label}: the leftover temp files are removed", left)
    st = request(blockd.sock, "GET", "/healthz")[0] if ok else None
    t.ok(st == 200, f"{label}: GET /healthz 200", st)
    if not ok:
        raise Abort()


def rounds(seconds):
    """Round numbers: ROUNDS of them, fewer (but MIN_ROUNDS) once `seconds` have passed."""
    end = time.monotonic() + seconds
    for r in range(ROUNDS):
        if r >= MIN_ROUNDS and time.monotonic() > end:
            print(f"# time budget spent: stopping after {r} rounds", flush=True)
            return
        yield r


def scenario_blob_mid_upload():
    """A 24 MiB POST /v1/blobs killed once 10 MiB have been taken in."""
    for r in rounds(12):
        label = f"blob round {r}"
        body = os.urandom(24 * MiB)
        hashes = [sha(body[i:i + BLOCK]) for i in range(0, len(body), BLOCK)]
        up = Upload("POST", "/v1/blobs", len(body))
        up.send(body[:10 * MiB])
        mid = wait_until(lambda: all(os.path.exists(block_path(h)) for h in hashes[:2])
                         and part_sizes() == [2 * MiB], timeout=10)
        t.ok(mid, f"{label}: blockd is mid-upload (2 blocks stored, 2 MiB of the third in a "
             ".part)", (part_sizes(), [os.path.exists(block_path(h)) for h in hashes[:3]]))
        t.ok(kill9(), f"{label}: killed with SIGKILL while the upload is open")
        up.close()
        check_after_kill(label, absent_blocks=hashes[2:], absent_contents=[sha(body)])
        check_restart(label)
        st, blob = post_blob(body)
        t.ok(st == 201 and blob_ok(blob, body), f"{label}: the same body uploads again (201)",
             (st, blob))
        if st == 201:
            ok, detail = served(blob["id"], body)
            t.ok(ok, f"{label}: GET /v1/content/{{id}} returns exactly the bytes", detail)
        problems, _, _ = check_store()
        t.ok(not problems, f"{label}: the store is consistent after the re-upload",
             "\n".join(problems))


def scenario_block_mid_body():
    """A 4 MiB PUT /v1/blocks/{h} killed with part of its body taken in."""
    cuts = [1, MiB, 2 * MiB + 12345, BLOCK - 1, 3 * MiB]
    for r in rounds(8):
        label = f"PUT round {r}"
        body = os.urandom(BLOCK)
        h = sha(body)
        cut = cuts[r % len(cuts)]
        up = Upload("PUT", f"/v1/blocks/{h}", len(body))
        up.send(body[:cut])
        mid = wait_until(lambda: part_sizes() == [cut], timeout=10)
        t.ok(mid, f"{label}: blockd has {cut} of {BLOCK} bytes in a .part", part_sizes())
        t.ok(kill9(), f"{label}: killed with SIGKILL mid-body")
        up.close()
        check_after_kill(label, absent_blocks=[h])
        check_restart(label)
        st, out = missing([h])
        t.ok(st == 200 and out == {"missing": [h]}, f"{label}: the block is reported missing",
             (st, out))
        st, out = put(h, body)
        t.ok(st == 201 and out == {"sha256": h, "size": BLOCK, "stored": True},
             f"{label}: a full PUT then stores it (201)", (st, out))
        t.ok(os.path.isfile(block_path(h)) and sha_file(block_path(h)) == h,
             f"{label}: its file hashes to its name")


def scenario_acknowledged():
    """kill -9 right after a 201: the acknowledged block (and blob) is there after restart."""
    for r in rounds(8):
        label = f"acked round {r}"
        body = os.urandom(BLOCK)
        h = sha(body)
        st, out = put(h, body)
        t.ok(st == 201, f"{label}: PUT answered 201", (st, out))
        t.ok(kill9(), f"{label}: killed with SIGKILL right after the 201")
        problems, blocks, _ = check_store()
        t.ok(not problems and blocks.get(h) == BLOCK, f"{label}: the block is on disk, whole",
             problems)
        check_restart(label)
        st, out = missing([h])
        t.ok(st == 200 and out == {"missing": []}, f"{label}: the block is reported present",
             (st, out))
        t.ok(sha_file(block_path(h)) == h, f"{label}: its file content hashes to its name")

        data = os.urandom(5 * MiB + r)
        st, blob = post_blob(data)
        t.ok(st == 201 and blob_ok(blob, data), f"{label}: POST /v1/blobs answered 201",
             (st, blob))
        t.ok(kill9(), f"{label}: killed with SIGKILL right after the blob's 201")
        check_restart(label + " (blob)")
        if st == 201:
            ok, detail = served(blob["id"], data)
            t.ok(ok, f"{label}: the acknowledged blob is served exactly", detail)


def scenario_concurrent():
    """Two uploads in flight at kill time: a blob and a block."""
    label = "concurrent"
    blob_body = os.urandom(16 * MiB)
    blob_hashes = [sha(blob_body[i:i + BLOCK]) for i in range(0, len(blob_body), BLOCK)]
    block_body = os.urandom(BLOCK)
    h = sha(block_body)
    a = Upload("POST", "/v1/blobs", len(blob_body))
    b = Upload("PUT", f"/v1/blocks/{h}", len(block_body))
    for i in range(0, 6 * MiB, MiB):  # interleaved: 6 MiB of the blob, 3 MiB of the block
        a.send(blob_body[i:i + MiB])
        if i < 3 * MiB:
            b.send(block_body[i:i + MiB])
    mid = wait_until(lambda: os.path.exists(block_path(blob_hashes[0]))
                     and part_sizes() == [2 * MiB, 3 * MiB], timeout=10)
    t.ok(mid, f"{label}: both uploads are in flight (two .part files)", part_sizes())
    t.ok(kill9(), f"{label}: killed with SIGKILL")
    a.close()
    b.close()
    check_after_kill(label, absent_blocks=blob_hashes[1:] + [h],
                     absent_contents=[sha(blob_body)])
    check_restart(label)
    st, out = missing(blob_hashes + [h])
    t.ok(st == 200 and out == {"missing": blob_hashes[1:] + [h]},
         f"{label}: only the blob's first block is stored", (st, out))
    st, out = put(h, block_body)
    t.ok(st == 201, f"{label}: the block PUT succeeds after restart", (st, out))
    st, blob = post_blob(blob_body)
    t.ok(st == 201 and blob_ok(blob, blob_body), f"{label}: the blob upload succeeds",
         (st, blob))
    if st == 201:
        ok, detail = served(blob["id"], blob_body)
        t.ok(ok, f"{label}: and is served exactly", detail)


def scenario_random_moment(rng):
    """Full-speed uploads killed at a random moment (which may fall in a block's fsync or
    rename, or after the answer): the invariants hold, an answered upload is kept."""
    data = os.urandom(12 * MiB)
    t0 = time.monotonic()
    st, blob = post_blob(data)
    span = time.monotonic() - t0
    t.ok(st == 201, "random: a 12 MiB upload takes %.3f s" % span, (st, blob))
    for r in rounds(8):
        label = f"random round {r}"
        body = os.urandom(12 * MiB)
        result = {}

        def upload():
            try:
                result["answer"] = post_blob(body)
            except OSError as e:
                result["error"] = e

        th = threading.Thread(target=upload)
        delay = rng.uniform(0, span * 1.2)
        th.start()
        time.sleep(delay)
        killed = kill9()
        th.join(15)
        answer = result.get("answer")
        acked = answer is not None and answer[0] == 201
        t.ok(killed and not th.is_alive(), f"{label}: killed {delay:.3f} s into the upload "
             f"({'after' if acked else 'before'} its 201)", result)
        check_after_kill(label, absent_contents=[] if acked else [sha(body)])
        check_restart(label)
        if acked:
            ok, detail = served(answer[1]["id"], body)
            t.ok(ok, f"{label}: the upload answered 201 before the kill is served", detail)
        st, blob = post_blob(body)
        t.ok(st == 201 and blob_ok(blob, body), f"{label}: the upload succeeds after restart",
             (st, blob))


try:
    t.ok(start(), "blockd starts", blockd.output())
    scenario_blob_mid_upload()
    scenario_block_mid_body()
    scenario_acknowledged()
    scenario_concurrent()
    seed = random.randrange(1 << 32)
    print(f"# random kill moments: seed {seed}", flush=True)
    scenario_random_moment(random.Random(seed))
    rc, _ = blockd.stop()
    t.ok(rc == 0, "stops cleanly after all the crashes", blockd.output())
except Abort:
    pass
except Exception:
    t.ok(False, "no unexpected error", traceback.format_exc())
finally:
    for s in socks:
        s.close()
    if blockd is not None and blockd.proc.poll() is None:
        blockd.proc.kill()
        blockd.proc.wait()
t.done()
