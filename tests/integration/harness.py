"""Helpers for integration tests: real daemons on temporary directories, spoken to over
their real sockets. Every process a test starts is killed and every directory removed at
exit, also when a check fails."""

import atexit
import http.client
import json
import os
import shutil
import signal
import socketserver
import socket
import subprocess
import sys
import tempfile
import threading
import time

STATE_DAEMONS = {"metad": "meta", "blockd": "blocks", "transcoded": "transcode", "notifyd": "notify"}
DAEMONS = ["dnsd", "lbd", "gatewayd", "metad", "blockd", "transcoded", "notifyd"]

_procs = []
_dirs = []


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    for d in _dirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))


class Tap:
    """Minimal TAP producer: meson counts and shows each check."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, detail=""):
        self.n += 1
        if cond:
            print(f"ok {self.n} - {name}", flush=True)
        else:
            self.failed += 1
            print(f"not ok {self.n} - {name}", flush=True)
            for line in str(detail).splitlines():
                print(f"# {line}", flush=True)
        return cond

    def todo(self, cond, name, why, detail=""):
        """A check of a known, documented bug: "not ok # TODO" (meson: an expected failure)
        until it is fixed; then "ok # TODO", which meson counts as an unexpected pass, so the
        mark must go."""
        self.n += 1
        print(f"{'ok' if cond else 'not ok'} {self.n} - {name} # TODO {why}", flush=True)
        if not cond:
            for line in str(detail).splitlines():
                print(f"# {line}", flush=True)
        return cond

    def done(self):
        print(f"1..{self.n}", flush=True)
        sys.exit(1 if self.failed else 0)


def tempdir(prefix="strata-it-"):
    d = tempfile.mkdtemp(prefix=prefix)
    _dirs.append(d)
    return d


def binary(name):
    build = os.environ["STRATA_BUILD_DIR"]
    if name == "stratactl":
        return os.path.join(build, "daemons", "stratactl", "stratactl")
    return os.path.join(build, "daemons", name, "strata-" + name)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(path, name, runtime_dir, state_root=None, extra=""):
    text = f'[daemon]\nruntime_dir = "{runtime_dir}"\nuser = ""\ngroup = ""\n'
    if name in STATE_DAEMONS:
        text += f'state_dir = "{state_root}/{STATE_DAEMONS[name]}"\n'
    text += extra
    with open(path, "w") as f:
        f.write(text)
    return path


def metad_auth(d, cost="minimal", key=True):
    """The [auth] section of a test strata-metad: a session key in d (made once, unless key is
    False: then the file stays absent and logins are off) and the given password cost."""
    path = os.path.join(d, "session.key")
    if key and not os.path.exists(path):
        with open(path, "w") as f:
            f.write(os.urandom(32).hex() + "\n")
    return f'[auth]\nsession_key_file = "{path}"\npassword_cost = "{cost}"\n'


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=5):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def request(sock_path, method, path, body=None, timeout=5):
    """Returns (status, headers dict, body bytes)."""
    conn = UnixHTTPConnection(sock_path, timeout)
    try:
        conn.request(method, path, body=body)
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def get_json(sock_path, path):
    status, _, body = request(sock_path, "GET", path)
    return status, json.loads(body)


class Daemon:
    """A daemon process started on a config file; its stderr goes to a log file."""

    def __init__(self, name, config, runtime_dir, env=None, wrapper=None):
        self.name = name
        self.config = config
        self.sock = os.path.join(runtime_dir, name + ".sock")
        self.log_path = config + ".log"
        self.log = open(self.log_path, "wb")
        cmd = (wrapper or []) + [binary(name), "--config", config]
        e = dict(os.environ)
        for k in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC",
                  "INVOCATION_ID", "JOURNAL_STREAM"):
            e.pop(k, None)
        e.update(env or {})
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=e)
        _procs.append(self.proc)

    def wait_ready(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                status, _, _ = request(self.sock, "GET", "/healthz", timeout=1)
                if status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=5):
        """SIGTERM; returns (exit code or None if it did not stop in time, seconds taken)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        return rc, time.monotonic() - t0

    def output(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


def run(cmd, env=None, timeout=20):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=timeout)


def wait_until(fn, timeout=5, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(step)
    return fn()


def raw_exchange(sock_path, data, timeout=5):
    """Sends raw bytes (the server may hang up early, e.g. 413) and returns what came back."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock_path)
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    return out


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        req, _ = self.socket.accept()
        return req, ("local", 0)  # BaseHTTPRequestHandler wants a (host, port)


def serve_unix(path, handler):
    """An HTTP server of the test (an http.server handler class) on a unix socket, serving
    from a daemon thread; call .shutdown() on the result to stop it."""
    server = _UnixHTTPServer(path, handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
