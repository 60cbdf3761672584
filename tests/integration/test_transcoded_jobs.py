#!/usr/bin/env python3
"""strata-transcoded's job queue through its socket and stratactl: submit (once per file
version), priorities, bad jobs, cancel, retry refusals, and jobs surviving kill -9."""

import json
import os
import signal

from harness import Daemon, Tap, binary, request, run, tempdir, write_config

t = Tap()
d = tempdir()
rundir = os.path.join(d, "run")
# No workers: the jobs here are made up (their sources do not exist), so they must wait.
conf = write_config(os.path.join(d, "transcoded.conf"), "transcoded", rundir, d,
                    "[workers]\ncount = 0\n")
td = Daemon("transcoded", conf, rundir)
t.ok(td.wait_ready(), "strata-transcoded starts", td.output())
ctl = binary("stratactl")


def post(path, body):
    st, _, out = request(td.sock, "POST", path, json.dumps(body).encode())
    return st, json.loads(out or b"{}")


def get(path):
    st, _, out = request(td.sock, "GET", path)
    return st, json.loads(out or b"{}")


def ctl_run(*args):
    return run([ctl, "--runtime-dir", rundir, *args])


long_video = {"file_id": 1, "version": 1, "kind": "video", "source": "sha256:aa",
              "duration_seconds": 3600}
short_video = {"file_id": 2, "version": 1, "kind": "video", "source": "sha256:bb",
               "bytes": 1000000}
image = {"file_id": 3, "version": 2, "kind": "image", "source": "sha256:cc"}
st, a = post("/v1/jobs", long_video)
t.ok(st == 202 and a["id"] == "long.1" and a["state"] == "pending" and a["attempts"] == 0 and
     a["job"]["file_id"] == 1, "a long video is submitted: long.1, pending", (st, a))
st, b = post("/v1/jobs", short_video)
st2, c = post("/v1/jobs", image)
t.ok(b["id"] == "short.1" and c["id"] == "images.1", "short videos and images get their own "
     "classes", (b, c))
st, again = post("/v1/jobs", short_video)
t.ok(st == 202 and again["id"] == "short.1", "the same file version again: the same job", again)
st, q = get("/v1/jobs")
ready = {x["priority"]: x["ready"] for x in q["queues"]}
t.ok(ready == {"images": 1, "short": 1, "videos": 0, "long": 1},
     "GET /v1/jobs counts each class once", q)

bad = [({"version": 1, "kind": "image", "source": "x"}, "file_id"),
       ({"file_id": 4, "version": 1, "kind": "audio", "source": "x"}, "kind"),
       ({"file_id": 4, "version": 1, "kind": "image", "source": "x", "extra": 1}, "extra"),
       ({"file_id": 4, "version": 1, "kind": "video", "source": "x", "duration_seconds": -1},
        "duration_seconds")]
answers = [post("/v1/jobs", body) for body, _ in bad]
t.ok(all(st == 400 and r["error"]["code"] == "bad_job" and word in r["error"]["message"]
         for (st, r), (_, word) in zip(answers, bad)),
     "bad jobs: 400 bad_job naming the field", answers)
st, _, out = request(td.sock, "POST", "/v1/jobs", b"{not json")
t.ok(st == 400, "a body that is not JSON: 400", (st, out))

st, one = get("/v1/jobs/images.1")
t.ok(st == 200 and one["job"]["source"] == "sha256:cc" and "runs_after" in one,
     "GET /v1/jobs/ID", one)
st, missing = get("/v1/jobs/images.99")
st2, garbage = get("/v1/jobs/nonsense")
t.ok(st == 404 and st2 == 404 and missing["error"]["code"] == "no_such_job",
     "unknown or malformed ids: 404 no_such_job", (missing, garbage))
st, r = post("/v1/jobs/short.1/retry", {})
t.ok(st == 409 and r["error"]["code"] == "job_not_failed", "only failed jobs are retried", r)

r = ctl_run("transcode", "queue")
rows = [l.split() for l in r.stdout.strip().splitlines()]
t.ok(r.returncode == 0 and rows[0] == ["PRIORITY", "READY", "DELAYED", "RUNNING", "FAILED"] and
     ["images", "1", "0", "0", "0"] in rows and ["long", "1", "0", "0", "0"] in rows,
     "stratactl transcode queue", r)
r = ctl_run("transcode", "jobs", "long.1")
t.ok(r.returncode == 0 and "pending" in r.stdout and "sha256:aa" in r.stdout,
     "stratactl transcode jobs ID", r)
r = ctl_run("transcode", "jobs")
t.ok(r.returncode == 0 and r.stdout.startswith("ID"), "stratactl transcode jobs: the failed "
     "ones (none)", r)
r = ctl_run("transcode", "cancel", "long.1")
t.ok(r.returncode == 0 and "long.1 cancelled" in r.stdout, "stratactl transcode cancel", r)
st, _ = get("/v1/jobs/long.1")
t.ok(st == 404, "a cancelled job is gone", st)
r = ctl_run("transcode", "retry", "short.1")
t.ok(r.returncode == 1 and "only a failed job" in r.stderr, "stratactl transcode retry of a "
     "pending job says why it cannot", r)
r = ctl_run("transcode", "cancel")
t.ok(r.returncode == 2, "usage errors exit 2", r)

# kill -9: what was accepted is still there.
td.signal(signal.SIGKILL)
td.stop()
td = Daemon("transcoded", conf, rundir)
t.ok(td.wait_ready(), "strata-transcoded starts again after kill -9", td.output())
st, q = get("/v1/jobs")
ready = {x["priority"]: x["ready"] for x in q["queues"]}
t.ok(ready == {"images": 1, "short": 1, "videos": 0, "long": 0},
     "the accepted jobs survived kill -9, the cancelled one stays cancelled", q)
rc, _ = td.stop()
t.ok(rc == 0, "stops cleanly", rc)

# Without GStreamer's plugins it refuses to start and says what to install.
empty = os.path.join(d, "no-plugins")
os.makedirs(empty)
bare = Daemon("transcoded", conf, rundir,
              env={"GST_PLUGIN_SYSTEM_PATH_1_0": empty, "GST_PLUGIN_PATH_1_0": empty,
                   "GST_REGISTRY_1_0": os.path.join(empty, "registry.bin")})
started = bare.wait_ready(timeout=5)
out = bare.output()
t.ok(not started and "GStreamer elements missing: filesrc (reading sources)" in out and
     "x264enc (H.264 encoding of the ladder)" in out and
     "install: apt-get install libgstreamer1.0-0 gstreamer1.0-plugins-base" in out and
     "gstreamer1.0-plugins-ugly gstreamer1.0-libav" in out,
     "missing GStreamer elements: it does not start, and names them and their packages", out)
bare.stop()
t.done()
