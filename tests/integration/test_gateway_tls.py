#!/usr/bin/env python3
"""gatewayd's HTTPS listeners ([tls]) against a real upstream: answers and X-Forwarded-Proto
over TLS, TLS 1.0/1.1 refused, ALPN, plain HTTP and garbage on the TLS port, certificate
renewal by SIGHUP (new handshakes get the new certificate, a kept-alive connection goes on),
a bad certificate on reload refused with the old one still served, and --check-config and
start refusing keys that do not load or match."""

import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import threading
import time
import warnings

from harness import Daemon, Tap, binary, free_port, run, tempdir, wait_until, write_config

t = Tap()
d = tempdir()
rundir = os.path.join(d, "run")


def make_cert(name, cn, days=2):
    """A self-signed P-256 certificate for localhost/127.0.0.1: (cert path, key path)."""
    cert, key = os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                        "-days", str(days), "-subj", "/CN=" + cn,
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return cert, key


def openssl(*args):
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def make_chain(cn):
    """An RSA leaf signed by an intermediate signed by a root: (root cert, leaf cert alone,
    leaf + intermediate file, leaf key). A client trusting only the root verifies the leaf
    only if the server sends the intermediate too."""
    p = lambda n: os.path.join(d, n)
    ca_ext, leaf_ext = p("ca.ext"), p("leaf.ext")
    with open(ca_ext, "w") as f:
        f.write("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
    with open(leaf_ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p("root.key"),
            "-out", p("root.crt"), "-days", "2", "-subj", "/CN=Test Root",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, subject, issuer, ext in [("inter", "/CN=Test Intermediate", "root", ca_ext),
                                       ("leaf", "/CN=" + cn, "inter", leaf_ext)]:
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", p(name + ".key"),
                "-out", p(name + ".csr"), "-subj", subject)
        openssl("x509", "-req", "-in", p(name + ".csr"), "-CA", p(issuer + ".crt"),
                "-CAkey", p(issuer + ".key"), "-CAcreateserial", "-days", "2",
                "-extfile", ext, "-out", p(name + ".crt"))
    with open(p("chain.pem"), "w") as out:
        for name in ("leaf", "inter"):
            with open(p(name + ".crt")) as f:
                out.write(f.read())
    return p("root.crt"), p("leaf.crt"), p("chain.pem"), p("leaf.key")


def der_of(pem_path):
    with open(pem_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


class Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        out = json.dumps({"path": self.path,
                          "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


class TCPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


up = TCPServer(("127.0.0.1", 0), Echo)
threading.Thread(target=up.serve_forever, daemon=True).start()

first_cert, first_key = make_cert("first", "first.test")
# The renewed certificate is a chain under a root the clients trust.
root_cert, second_cert, second_chain, second_key = make_chain("second.test")
other_cert, other_key = make_cert("other", "other.test")
# What the daemon reads: copies, replaced in place like a renewal tool does.
cert_path, key_path = os.path.join(d, "served.crt"), os.path.join(d, "served.key")
shutil.copy(first_cert, cert_path)
shutil.copy(first_key, key_path)

port, tls_port = free_port(), free_port()


def config(name, tls_extra):
    extra = (f'[public]\nlisten = ["127.0.0.1:{port}"]\nweb_root = "{d}"\n'
             f'[proxy]\npools = ["up http://127.0.0.1:{up.server_address[1]}"]\n'
             'routes = ["/echo pool=up"]\n'
             f'[auth]\napi_key_verifier = ""\n[tls]\n{tls_extra}')
    return write_config(os.path.join(d, name), "gatewayd", rundir, d, extra)


conf = config("gatewayd.conf", f'listen = ["127.0.0.1:{tls_port}"]\n'
              f'certificate_file = "{cert_path}"\nkey_file = "{key_path}"\n')


def check_config(path):
    return run([binary("gatewayd"), "--config", path, "--check-config"])


r = check_config(conf)
t.ok(r.returncode == 0, "--check-config accepts a matching certificate and key", r)
bad_key = config("badkey.conf", f'listen = ["127.0.0.1:{tls_port}"]\n'
                 f'certificate_file = "{first_cert}"\nkey_file = "{other_key}"\n')
r = check_config(bad_key)
t.ok(r.returncode == 1 and "private key does not match the certificate" in r.stderr
     and other_key in r.stderr, "--check-config: a key of another certificate is refused", r)
missing = config("missing.conf", f'listen = ["127.0.0.1:{tls_port}"]\n'
                 f'certificate_file = "{first_cert}"\nkey_file = "{d}/nope.key"\n')
r = check_config(missing)
t.ok(r.returncode == 1 and "nope.key: cannot open private key: No such file" in r.stderr,
     "--check-config: a missing key file is named", r)
garbage_key = os.path.join(d, "garbage.key")
with open(garbage_key, "w") as f:
    f.write("-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n")
r = check_config(config("garbage.conf", f'listen = ["127.0.0.1:{tls_port}"]\n'
                        f'certificate_file = "{first_cert}"\nkey_file = "{garbage_key}"\n'))
t.ok(r.returncode == 1 and "not a PEM private key" in r.stderr,
     "--check-config: a key that does not parse is refused", r)
r = check_config(config("nocert.conf", f'listen = ["127.0.0.1:{tls_port}"]\n'))
t.ok(r.returncode == 1 and "set tls.certificate_file and tls.key_file" in r.stderr,
     "--check-config: tls.listen without a certificate is refused", r)
r = check_config(config("prio.conf", f'certificate_file = "{first_cert}"\n'
                        f'key_file = "{first_key}"\npriorities = "NORMAL:+BOGUS-THING"\n'))
t.ok(r.returncode == 1 and "tls.priorities" in r.stderr and "BOGUS" in r.stderr,
     "--check-config: a bad GnuTLS priority string is refused, with where it goes wrong", r)

# Start refuses a mismatched pair too (same check).
bad = Daemon("gatewayd", bad_key, rundir)
try:
    rc = bad.proc.wait(10)
except subprocess.TimeoutExpired:
    rc = None
t.ok(rc == 1 and "does not match" in bad.output(), "the daemon does not start with a bad key",
     bad.output())

gw = Daemon("gatewayd", conf, rundir)
t.ok(gw.wait_ready(), "gatewayd starts with a TLS listener", gw.output())


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False  # the certificates change names; trust is what is checked
    for c in (first_cert, root_cert):
        ctx.load_verify_locations(c)
    return ctx


def https(path="/echo/x", conn=None):
    c = conn or http.client.HTTPSConnection("127.0.0.1", tls_port, timeout=10,
                                            context=tls_context())
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    der = c.sock.getpeercert(binary_form=True) if c.sock else None
    if not conn:
        c.close()
    return r.status, body, der


def alive():
    try:
        return https("/healthz")[0] == 200
    except OSError:
        return False


status, body, der = https()
answer = json.loads(body) if status == 200 else {}
t.ok(status == 200 and answer.get("path") == "/echo/x", "a proxied request over HTTPS",
     (status, body))
t.ok(answer.get("headers", {}).get("x-forwarded-proto") == "https",
     "X-Forwarded-Proto: https upstream from the TLS listener", body)
t.ok(der == der_of(first_cert), "the configured certificate is presented")
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
c.request("GET", "/echo/plain")
plain = json.loads(c.getresponse().read())
c.close()
t.ok(plain["headers"].get("x-forwarded-proto") == "http",
     "X-Forwarded-Proto stays http on the plain listener", plain)
status, body, _ = https("/healthz")
t.ok(status == 200 and json.loads(body) == {"status": "ok"}, "/healthz over HTTPS", body)
# A static file from web_root (sent from its fd: over TLS libmicrohttpd cannot sendfile).
big = os.urandom(3 << 20)
with open(os.path.join(d, "big.bin"), "wb") as f:
    f.write(big)
status, body, _ = https("/big.bin")
t.ok(status == 200 and body == big, "a 3 MiB static file over HTTPS, byte for byte",
     (status, len(body)))


def handshake(ctx):
    """(negotiated version, ALPN) or the exception of a failed handshake."""
    with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as raw:
        try:
            with ctx.wrap_socket(raw) as s:
                return s.version(), s.selected_alpn_protocol()
        except (ssl.SSLError, OSError) as e:
            return e


ctx = tls_context()
ctx.set_alpn_protocols(["h2", "http/1.1"])
got = handshake(ctx)
t.ok(got == ("TLSv1.3", "http/1.1"), "TLS 1.3 by default; ALPN picks http/1.1 over h2", got)
ctx = tls_context()
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
got = handshake(ctx)
t.ok(isinstance(got, tuple) and got[0] == "TLSv1.2", "TLS 1.2 is accepted", got)


def old_client(minimum, maximum):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # so OpenSSL offers the old versions at all
    ctx.minimum_version, ctx.maximum_version = minimum, maximum
    return ctx


with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    got = handshake(old_client(ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_2))
    t.ok(isinstance(got, tuple) and got[0] == "TLSv1.2",
         "a client offering TLS 1.0-1.2 gets TLS 1.2", got)
    for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        got = handshake(old_client(version, version))
        # The refusal must come from the server (it hangs up on the ClientHello, or alerts),
        # not from the client's own policy ("no protocols available").
        by_server = isinstance(got, (ssl.SSLEOFError, ssl.SSLZeroReturnError,
                                     ConnectionResetError)) or "ALERT" in str(got).upper()
        t.ok(by_server, f"{version.name} is refused by the server", repr(got))


def raw(data, timeout=3):
    """Sends bytes to the TLS port, returns what came back before the server hung up."""
    out = b""
    with socket.create_connection(("127.0.0.1", tls_port), timeout=timeout) as s:
        try:
            s.sendall(data)
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (socket.timeout, ConnectionResetError, BrokenPipeError):
            return out, "timeout-or-reset"
    return out, "closed"


out, how = raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
t.ok(how == "closed" and b"HTTP/1." not in out and len(out) < 64,
     "plain HTTP to the TLS port: closed without an HTTP answer", (how, out))
t.ok(alive(), "the daemon serves HTTPS after plain HTTP on its TLS port")
for name, data in [("random bytes", os.urandom(65536)),
                   ("a TLS record header announcing 16 MiB", b"\x16\x03\x03\xff\xff" + b"\x01" * 100),
                   ("a truncated ClientHello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")]:
    out, how = raw(data)
    t.ok(gw.proc.poll() is None and alive(), f"garbage on the TLS port ({name}): still serving",
         (how, out[:64], gw.output()[-2000:]))

# Renewal: the files are replaced, SIGHUP re-reads them.
kept = http.client.HTTPSConnection("127.0.0.1", tls_port, timeout=10, context=tls_context())
status, _, der = https("/echo/kept", kept)
t.ok(status == 200 and der == der_of(first_cert), "a kept-alive connection on the first cert")


def metric(prefix):
    out = run(["curl", "-s", "--unix-socket", gw.sock, "http://x/metrics"]).stdout
    for line in out.splitlines():
        if line.startswith(prefix + " "):
            return float(line.split()[-1])
    return 0.0


def reloads(result):
    return metric(f'strata_config_reloads_total{{result="{result}"}}')


def expiry_of(pem_path):
    return ssl.cert_time_to_seconds(ssl._ssl._test_decode_cert(pem_path)["notAfter"])


EXPIRY = "strata_gateway_tls_certificate_expiry_timestamp_seconds"
t.ok(metric(EXPIRY) == expiry_of(first_cert), "the expiry metric is the first certificate's",
     (metric(EXPIRY), expiry_of(first_cert)))


shutil.copy(second_chain, cert_path + ".new")
shutil.copy(second_key, key_path + ".new")
os.replace(key_path + ".new", key_path)
os.replace(cert_path + ".new", cert_path)
gw.signal(signal.SIGHUP)
t.ok(wait_until(lambda: reloads("ok") >= 1), "SIGHUP reloads", gw.output()[-2000:])
status, _, der = https("/healthz")
t.ok(status == 200 and der == der_of(second_cert),
     "a new connection gets the renewed certificate, verified through its intermediate")
t.ok('TLS certificate "CN=second.test"' in gw.output(), "the log names the new certificate")
t.ok(metric(EXPIRY) == expiry_of(second_cert), "the expiry metric follows the reload")
ctx = tls_context()
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
ctx.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256")
got = handshake(ctx)
t.ok(isinstance(got, tuple) and got[0] == "TLSv1.2", "TLS 1.2 with ECDHE and the RSA key", got)
ctx.set_ciphers("AES128-GCM-SHA256:AES256-GCM-SHA384")  # RSA key exchange: no forward secrecy
got = handshake(ctx)
t.ok(isinstance(got, (ssl.SSLError, ConnectionResetError)), "static RSA key exchange is refused",
     repr(got))
try:
    status, body, der = https("/echo/kept-again", kept)
    ok = status == 200 and json.loads(body)["path"] == "/echo/kept-again"
except (OSError, http.client.HTTPException) as e:
    ok, der = False, e
t.ok(ok and kept.sock is not None and der == der_of(first_cert),
     "the connection made before the reload is still served (on its old session)", der)
kept.close()

# A broken renewal: the key of another certificate, then a certificate file cut short.
shutil.copy(other_key, key_path)
gw.signal(signal.SIGHUP)
t.ok(wait_until(lambda: reloads("error") >= 1), "a reload with a mismatched key is rejected",
     gw.output()[-2000:])
t.ok("reload rejected" in gw.output() and "does not match" in gw.output(),
     "the rejection is logged with the reason")
status, _, der = https("/healthz")
t.ok(status == 200 and der == der_of(second_cert), "the previous certificate is still served")
shutil.copy(second_key, key_path)
with open(second_chain) as f:
    pem = f.read()
with open(cert_path, "w") as f:
    f.write(pem[:len(pem) // 2])
gw.signal(signal.SIGHUP)
t.ok(wait_until(lambda: reloads("error") >= 2), "a reload with a truncated certificate is "
     "rejected", gw.output()[-2000:])
status, _, der = https("/healthz")
t.ok(status == 200 and der == der_of(second_cert), "... and the previous certificate stays")
shutil.copy(first_cert, cert_path)
shutil.copy(first_key, key_path)
r = run([binary("stratactl"), "--runtime-dir", rundir, "reload", "gatewayd"])
status, _, der = https("/healthz")
t.ok(r.returncode == 0 and der == der_of(first_cert),
     "stratactl reload picks up a fixed pair again", r)

rc, _ = gw.stop()
t.ok(rc == 0, "gatewayd stops cleanly", gw.output()[-2000:])

# tls.min_version = "1.3" refuses TLS 1.2, whatever tls.priorities says.
tls_port = free_port()
port = free_port()
conf13 = config("tls13.conf", f'listen = ["127.0.0.1:{tls_port}"]\n'
                f'certificate_file = "{first_cert}"\nkey_file = "{first_key}"\n'
                'min_version = "1.3"\npriorities = "NORMAL:+VERS-TLS1.2:+VERS-TLS1.1"\n')
gw = Daemon("gatewayd", conf13, rundir)
t.ok(gw.wait_ready(), "gatewayd starts with min_version 1.3", gw.output())
ctx = tls_context()
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
got = handshake(ctx)
t.ok(isinstance(got, (ssl.SSLError, ConnectionResetError)), "min_version 1.3: TLS 1.2 is refused",
     repr(got))
got = handshake(tls_context())
t.ok(isinstance(got, tuple) and got[0] == "TLSv1.3", "min_version 1.3: TLS 1.3 is served", got)
status, body, _ = https()
t.ok(status == 200 and json.loads(body)["headers"].get("x-forwarded-proto") == "https",
     "min_version 1.3: proxied over HTTPS", body)
rc, _ = gw.stop()
t.ok(rc == 0, "that gatewayd stops cleanly too", gw.output()[-2000:])

# Socket activation: HTTPS on the socket systemd passes as "public-tls" (tls.listen unused).
activate = shutil.which("systemd-socket-activate")
if activate:
    port, tls_port = free_port(), free_port()
    conf_sa = config("activated.conf", f'certificate_file = "{first_cert}"\n'
                     f'key_file = "{first_key}"\n')
    gsock = os.path.join(d, "activated.sock")
    gw = Daemon("gatewayd", conf_sa, rundir,
                wrapper=[activate, "-l", gsock, "-l", f"127.0.0.1:{port}",
                         "-l", f"127.0.0.1:{tls_port}", "--fdname=control:public:public-tls"])
    gw.sock = gsock
    t.ok(gw.wait_ready(), "gatewayd takes control, public and public-tls sockets", gw.output())
    status, body, der = https()
    t.ok(status == 200 and der == der_of(first_cert) and
         json.loads(body)["headers"].get("x-forwarded-proto") == "https",
         "the activated public-tls socket serves HTTPS", body)
    t.ok("using 1 public-tls socket(s) from systemd, TLS" in gw.output(),
         "the log says the TLS socket came from systemd", gw.output())
    rc, _ = gw.stop()
    t.ok(rc == 0, "the activated gatewayd stops cleanly", gw.output()[-2000:])
up.shutdown()
t.done()
