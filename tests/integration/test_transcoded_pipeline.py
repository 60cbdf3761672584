#!/usr/bin/env python3
"""strata-transcoded end to end with real daemons (blockd, metad, transcoded on unix sockets):
a video and an image uploaded to metad become jobs (metad's event sink), run in worker
processes, and end as renditions stored in blockd and recorded on the file, which metad then
marks ready (file.ready). Then each bad input the issue names (a text file named .mp4, zero
bytes, a truncated video, a corrupt JPEG, an image and a video over the limits, an unknown
codec), a file deleted while it is processed, a worker killed with SIGKILL, a worker that
hangs (SIGSTOP: no progress), metad away when a job ends, and a cancelled running job: each ends with a clear reason in
metad, stores nothing in blockd, and the daemon keeps serving. Inputs are made here with
gst-launch-1.0."""

import json
import os
import signal
import struct
import subprocess
import threading
import time
import zlib
import http.server

from harness import (Daemon, Tap, UnixHTTPConnection, metad_auth, serve_unix, tempdir,
                     wait_until, write_config)

t = Tap()
d = tempdir()
rundir = os.path.join(d, "run")
media = os.path.join(d, "media")
os.makedirs(media)


def gst(*pipeline):
    r = subprocess.run(["gst-launch-1.0", "-q", *pipeline], capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode(errors="replace")


def make_video(path, seconds, w, h, audio=True):
    frames = seconds * 30
    args = ["videotestsrc", f"num-buffers={frames}", "pattern=ball", "!",
            f"video/x-raw,width={w},height={h},framerate=30/1", "!", "x264enc",
            "speed-preset=ultrafast", "!", "h264parse", "!", "mp4mux", "name=m", "!",
            "filesink", f"location={path}"]
    if audio:
        args += ["audiotestsrc", f"num-buffers={seconds * 44100 // 1024}", "!",
                 "audio/x-raw,rate=44100,channels=2", "!", "avenc_aac", "!", "aacparse", "!",
                 "m."]
    gst(*args)
    with open(path, "rb") as f:
        return f.read()


def make_jpeg(path, w, h):
    gst("videotestsrc", "num-buffers=1", "pattern=smpte", "!", f"video/x-raw,width={w},height={h}",
        "!", "jpegenc", "!", "filesink", f"location={path}")
    with open(path, "rb") as f:
        return f.read()


def png_claiming(w, h):
    """A PNG whose header (valid CRC) claims w x h, with a tiny body: a decompression bomb's
    shape, refused from the header."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
            chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def jpeg_size(data):
    """(width, height) from a JPEG's SOF marker."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        i += 2 + length
    return None


# --- the stack -----------------------------------------------------------------------------
# An observer sink records metad's events, to see file.ready and file.failed.
events, lock = [], threading.Lock()


class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with lock:
            events.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


sink_path = os.path.join(d, "sink.sock")
serve_unix(sink_path, Sink)
tsock = os.path.join(rundir, "transcoded.sock")

bconf = write_config(os.path.join(d, "blockd.conf"), "blockd", rundir, d)
blockd = Daemon("blockd", bconf, rundir)
t.ok(blockd.wait_ready(), "blockd starts", blockd.output())
mconf = write_config(os.path.join(d, "metad.conf"), "metad", rundir, d, metad_auth(d) + (
    f'[blockd]\nsocket = "unix:{blockd.sock}"\n'
    f'[events]\nsinks = ["transcoded unix:{tsock} file.created", "watch unix:{sink_path}"]\n'
    '[files]\nprocess_types = ["video/*", "image/*"]\n'))
metad = Daemon("metad", mconf, rundir)
t.ok(metad.wait_ready(), "metad starts", metad.output())
tconf = write_config(os.path.join(d, "transcoded.conf"), "transcoded", rundir, d, (
    f'[metad]\nsocket = "unix:{metad.sock}"\n[blockd]\nsocket = "unix:{blockd.sock}"\n'
    '[workers]\ncount = 2\nstall_timeout_seconds = 6\n'
    '[jobs]\nmax_attempts = 2\nretry_backoff_seconds = 1\n'
    '[video]\nmax_duration_seconds = 30\n'))
td = Daemon("transcoded", tconf, rundir)
t.ok(td.wait_ready(30), "strata-transcoded starts (its elements are all there)", td.output())


def call(sock, method, path, body=None, caller=None, raw=None, timeout=30):
    c = UnixHTTPConnection(sock, timeout=timeout)
    h = {"X-Strata-Caller": f"user={caller}"} if caller else {}
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    out = r.status, r.read()
    c.close()
    return out


def jcall(sock, *a, **k):
    st, out = call(sock, *a, **k)
    try:
        return st, json.loads(out) if out else None
    except ValueError:
        return st, out


st, alice = jcall(metad.sock, "POST", "/v1/admin/users",
                  {"name": "alice", "email": "alice@example.org", "password": "correct horse"})
assert st == 201, alice
A = alice["id"]


def upload(name, data, media_type):
    st, node = jcall(metad.sock, "POST",
                     f"/v1/upload?parent={alice['root']}&name={name}&type={media_type}",
                     raw=data, caller=A, timeout=60)
    assert st == 201, (st, node)
    return node


def node(n):
    return jcall(metad.sock, "GET", f"/v1/nodes/{n['id']}", caller=A)[1]


def wait_state(n, states=("ready", "failed"), timeout=120):
    out = {}

    def settled():
        out["n"] = node(n)
        return out["n"].get("state") in states
    wait_until(settled, timeout=timeout, step=0.25)
    return out["n"]


def content(manifest):
    return call(blockd.sock, "GET", f"/v1/content/{manifest}")


def rendition(n, name):
    return next((r for r in n.get("renditions", []) if r["name"] == name), None)


def jobs():
    return jcall(tsock, "GET", "/v1/jobs")[1]


def stored_files():
    return jcall(blockd.sock, "GET", "/v1/blocks/stats")[1]["files"]


# --- a video through the queue -------------------------------------------------------------
video = make_video(os.path.join(media, "v.mp4"), 8, 640, 360)
v = upload("Clip.mp4", video, "video/mp4")
t.ok(v["state"] == "processing", "an uploaded video is committed as processing", v)
v = wait_state(v)
t.ok(v["state"] == "ready" and "processing" not in v, "the video becomes ready", v)
src = rendition(v, "source")
t.ok(src and src["manifest"] == v["manifest"] and src["width"] == 640 and src["height"] == 360 and
     src.get("video_codec") == "h264" and src.get("audio_codec") == "aac" and
     7.5 < src.get("duration", 0) < 8.5,
     "the source's metadata is recorded (size, codecs, duration)", src)
hls = rendition(v, "hls")
t.ok(hls and hls["rungs"] == ["360p"],
     "the ladder is capped at the source: 360p only, nothing upscaled", hls)
st, master = content(hls["manifest"]) if hls else (0, b"")
rung = rendition(v, "360p")
t.ok(st == 200 and b"#EXT-X-STREAM-INF:" in master and b"RESOLUTION=640x360" in master and
     b"CODECS=\"avc1." in master and b"mp4a.40.2" in master and rung and
     rung["manifest"].encode() in master,
     "blockd holds the master playlist, naming the rung's playlist by its address", master)
st, playlist = content(rung["manifest"]) if rung else (0, b"")
segs = rung["segments"] if rung else []
t.ok(st == 200 and b"#EXT-X-PLAYLIST-TYPE:VOD" in playlist and b"#EXT-X-ENDLIST" in playlist and
     len(segs) >= 2 and all(s.encode() in playlist for s in segs) and
     abs(rung["duration"] - 8) < 0.6,
     "the rung's VOD playlist lists its segments by address, 8 s in all", (playlist, segs))
st, seg = content(segs[0]) if segs else (0, b"")
t.ok(st == 200 and len(seg) > 188 and seg[0] == 0x47 and seg[188] == 0x47,
     "a segment is MPEG-TS, served by blockd", len(seg))
poster, thumbs = rendition(v, "poster"), rendition(v, "thumbnails")
st, pdata = content(poster["manifest"]) if poster else (0, b"")
t.ok(st == 200 and jpeg_size(pdata) == (640, 360), "a poster frame (JPEG, display size)",
     jpeg_size(pdata))
t.ok(thumbs and len(thumbs["frames"]) >= 1 and thumbs["width"] == 160 and
     content(thumbs["frames"][0]["manifest"])[0] == 200,
     "scrubbing thumbnails (every 10 s, 160 wide)", thumbs)
wait_until(lambda: any(e["type"] == "file.ready" and e["node"] == v["id"] for e in events), 10)
with lock:
    t.ok(any(e["type"] == "file.ready" and e["node"] == v["id"] for e in events),
         "metad emitted file.ready")
recent = jobs()["recent"]
t.ok(recent and recent[0]["outcome"] == "done" and recent[0]["cpu_seconds"] > 0,
     "the job is done; the worker's CPU time is reported", recent[:1])

# --- an image ------------------------------------------------------------------------------
img = upload("Photo.jpg", make_jpeg(os.path.join(media, "p.jpg"), 2400, 1600), "image/jpeg")
img = wait_state(img, timeout=60)
disp, thumb = rendition(img, "display"), rendition(img, "thumbnail")
t.ok(img["state"] == "ready" and disp and thumb, "the image becomes ready", img)
st, ddata = content(disp["manifest"]) if disp else (0, b"")
st2, tdata = content(thumb["manifest"]) if thumb else (0, b"")
t.ok(jpeg_size(ddata) == (1620, 1080) and disp["width"] == 1620,
     "the display rendition fits 1920x1080, aspect kept", (jpeg_size(ddata), disp))
t.ok(jpeg_size(tdata) == (300, 300), "the thumbnail is 300x300 (cover crop)", jpeg_size(tdata))
t.ok(b"Exif\0\0" not in ddata[:4096], "no EXIF in the rendition")

# --- bad inputs ----------------------------------------------------------------------------
bad_inputs = [
    ("notes.mp4", b"this is a text file, not a video\n" * 20, "video/mp4", "not an image or video"),
    ("empty.mp4", b"", "video/mp4", "empty"),
    ("cut.mp4", video[:len(video) // 3], "video/mp4", ""),
    ("broken.jpg", make_jpeg(os.path.join(media, "b.jpg"), 64, 64)[:200] + os.urandom(500),
     "image/jpeg", ""),
    ("bomb.png", png_claiming(40000, 40000), "image/png", "pixels"),
    ("long.mp4", make_video(os.path.join(media, "long.mp4"), 40, 64, 36, audio=False),
     "video/mp4", "lasts"),
    ("odd.mp4", video.replace(b"avc1", b"zzzz"), "video/mp4", ""),
]
before = stored_files() + len(bad_inputs)  # each upload stores its source, nothing more
nodes = [(name, upload(name, data, mt), word) for name, data, mt, word in bad_inputs]
for name, n, word in nodes:
    n = wait_state(n, timeout=90)
    err = (n.get("processing") or {}).get("error", "")
    t.ok(n["state"] == "failed" and err and word.lower() in err.lower(),
         f"{name}: the file fails with a reason in metad", n)
t.ok(stored_files() == before, "the failed jobs stored nothing in blockd",
     (stored_files(), before))
failed = {f["job"]["file_id"]: f for f in jobs()["failed"]}
t.ok(all(int(n["id"]) in failed or n["id"] in failed for _, n, _ in nodes) or len(failed) >= 6,
     "their jobs are dead-lettered with the reason", failed)
t.ok(call(tsock, "GET", "/healthz")[0] == 200, "the daemon keeps serving")


# --- deleted while processing, crash, hang, cancel ---------------------------------------
def running_job(file_id, timeout=60):
    found = {}

    def look():
        for r in jobs()["running"]:
            if str(r["file_id"]) == str(file_id) and r["pid"] > 0 and r["percent"] > 0:
                found["r"] = r
                return True
        return False
    wait_until(look, timeout=timeout, step=0.1)
    return found.get("r")


big = make_video(os.path.join(media, "big.mp4"), 20, 1280, 720)
gone = upload("gone.mp4", big, "video/mp4")
r = running_job(gone["id"])
st, _ = jcall(metad.sock, "DELETE", f"/v1/nodes/{gone['id']}", caller=A)
st2, _ = jcall(metad.sock, "DELETE", f"/v1/trash/{gone['id']}", caller=A)
t.ok(r and st == 200 and st2 == 200, "a file deleted (and purged) while it is processed",
     (r, st, st2))
wait_until(lambda: any(str(f["job"]["file_id"]) == str(gone["id"]) for f in jobs()["failed"]),
           timeout=120, step=0.5)
dead = [f for f in jobs()["failed"] if str(f["job"]["file_id"]) == str(gone["id"])]
t.ok(dead and "deleted" in dead[0].get("last_error", ""),
     "its job ends: the file was deleted while it was processed",
     (dead, metad.output()[-3000:], td.output()[-3000:]))

crash = upload("crash.mp4", big, "video/mp4")
r = running_job(crash["id"])
seen = []
wait_until(lambda: (seen.append(node(crash).get("processing")) or False) or
           (seen[-1] or {}).get("percent", 0) > 5, timeout=30, step=0.2)
t.ok(any(p and 0 < p.get("percent", 0) < 100 and p.get("stage") for p in seen),
     "while it runs, metad shows its progress (percent, stage)", seen[-3:])
if r:
    os.kill(r["pid"], signal.SIGKILL)
crash = wait_state(crash, timeout=180)
t.ok(r and crash["state"] == "ready", "a worker killed with SIGKILL: the job is retried and "
     "the file still becomes ready", crash)
t.ok(any(f["outcome"] == "crashed" and "KILL" in f["reason"] for f in jobs()["recent"]),
     "the crash is reported with its signal", jobs()["recent"][:4])

hang = upload("hang.mp4", big, "video/mp4")
r = running_job(hang["id"])
if r:
    os.kill(r["pid"], signal.SIGSTOP)
    t0 = time.monotonic()
    wait_until(lambda: any(f["outcome"] == "stalled" for f in jobs()["recent"]), 30, 0.2)
    took = time.monotonic() - t0
t.ok(r and any(f["outcome"] == "stalled" for f in jobs()["recent"]) and took < 20,
     "a hung worker (no progress for stall_timeout_seconds) is killed", jobs()["recent"][:3])
hang = wait_state(hang, timeout=180)
t.ok(hang["state"] == "ready", "and its job runs again to the end", hang)

# metad away when a job ends: the result is recorded once it is back (tried 1, 2, 4 s apart).
away = upload("away.mp4", big, "video/mp4")
r = running_job(away["id"])
metad.stop()
worker_gone = wait_until(lambda: any(x["pid"] == 0 for x in jobs()["running"]), 60, 0.1)
metad = Daemon("metad", mconf, rundir)
t.ok(r and worker_gone and metad.wait_ready(), "metad stopped while a job ran, started again "
     "once its worker was done", jobs()["running"])
away = wait_state(away, timeout=60)
t.ok(away["state"] == "ready" and rendition(away, "hls"),
     "the result waited for metad and was recorded", away)

cancel = upload("cancel.mp4", big, "video/mp4")
r = running_job(cancel["id"])
st, out = jcall(tsock, "DELETE", f"/v1/jobs/{r['id']}") if r else (0, None)
t.ok(st == 202 and out["state"] == "cancelling", "DELETE of a running job: 202 cancelling", out)
cancel = wait_state(cancel, timeout=30)
t.ok(cancel["state"] == "failed" and "cancelled" in cancel["processing"]["error"],
     "the worker is killed and the file marked failed, cancelled", cancel)
t.ok(r and jcall(tsock, "GET", f"/v1/jobs/{r['id']}")[0] == 404, "the job is gone")
t.ok(call(tsock, "GET", "/healthz")[0] == 200 and td.proc.poll() is None,
     "the daemon kept serving through all of it", td.output()[-2000:])
rc, _ = td.stop(10)
t.ok(rc == 0, "strata-transcoded stops cleanly", td.output()[-2000:])
t.done()
