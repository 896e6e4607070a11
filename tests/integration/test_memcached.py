"""varved's memcached front end against real clients: pymemcache for the text protocol, raw TCP and
Unix sockets for the meta protocol and for hostile input. Each test gets its own server (see
conftest.py)."""
import re
import socket
import threading
import time
import urllib.request

import pytest
from pymemcache import serde
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheServerError


def client(server, **kwargs):
    kwargs.setdefault("default_noreply", False)
    kwargs.setdefault("connect_timeout", 5)
    kwargs.setdefault("timeout", 10)
    return Client(("127.0.0.1", server.memcached_port), **kwargs)


class Raw:
    """A raw protocol connection (TCP or Unix) with exact-length reads."""

    def __init__(self, server, unix=False, timeout=10):
        if unix:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(server.memcached_socket)
        else:
            self.sock = socket.create_connection(("127.0.0.1", server.memcached_port),
                                                 timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("server closed the connection")
        self.buf += chunk

    def read(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        out, _, self.buf = self.buf.partition(b"\r\n")
        return out + b"\r\n"

    def expect(self, expected):
        got = self.read(len(expected))
        assert got == expected
        return got

    def call(self, request, reply):
        self.send(request)
        return self.expect(reply)

    def closed(self, timeout=5):
        """True once the server has closed the connection (EOF) after any pending bytes."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def cas_of(raw, key):
    raw.send(b"gets " + key + b"\r\n")
    head = raw.line()
    assert head.startswith(b"VALUE "), head
    length = int(head.split()[3])
    raw.read(length + 2)
    raw.expect(b"END\r\n")
    return int(head.split()[4])


def wait_for_port(server, timeout=20):
    """Waits until the memcached port accepts connections (belt and braces after a restart)."""
    deadline = time.time() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", server.memcached_port), timeout=1).close()
            return
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def metric(server, name, labels):
    """A value from /metrics, or None when the HTTP endpoint does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/metrics",
                                    timeout=5) as r:
            text = r.read().decode()
    except Exception:
        return None
    m = re.search(r"^" + re.escape(name + "{" + labels + "}") + r" (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def test_storage_and_retrieval(varved):
    c = client(varved)
    assert c.set("a", b"hello")
    assert c.get("a") == b"hello"
    assert c.get("missing") is None
    assert c.add("a", b"x") is False
    assert c.add("b", b"x") is True
    assert c.replace("nope", b"x") is False
    assert c.replace("b", b"y") is True
    assert c.get("b") == b"y"
    assert c.append("a", b"-end")
    assert c.prepend("a", b"start-")
    assert c.get("a") == b"start-hello-end"
    assert c.append("nope", b"x") is False
    assert c.prepend("nope", b"x") is False
    assert c.delete("a") is True
    assert c.delete("a") is False
    assert c.get("a") is None


def test_gets_and_cas(varved):
    c = client(varved)
    assert c.cas("k", b"v", 1) is None  # NOT_FOUND
    c.set("k", b"v1")
    value, token = c.gets("k")
    assert value == b"v1"
    assert c.cas("k", b"v2", int(token) + 1000) is False  # EXISTS
    assert c.cas("k", b"v2", token) is True
    assert c.cas("k", b"v3", token) is False  # stale now
    assert c.get("k") == b"v2"
    value, token2 = c.gets("k")
    assert int(token2) > int(token)


def test_incr_decr(varved):
    c = client(varved)
    assert c.incr("n", 1) is None
    c.set("n", b"10")
    assert c.incr("n", 5) == 15
    assert c.decr("n", 100) == 0
    assert c.incr("n", 2 ** 64 - 1) == 2 ** 64 - 1
    assert c.incr("n", 2) == 1  # wraps
    c.set("s", b"abc")
    with pytest.raises(Exception):
        c.incr("s", 1)


def test_touch_and_expiry(varved):
    c = client(varved)
    assert c.touch("nope", 10) is False
    c.set("t", b"x", expire=1)
    c.set("keep", b"y", expire=1)
    assert c.touch("keep", 100) is True
    time.sleep(2.2)
    assert c.get("t") is None
    assert c.get("keep") == b"y"
    raw = Raw(varved)
    raw.call(b"mg keep t\r\n", b"HD t")
    ttl = int(raw.line().strip())
    assert 95 <= ttl <= 100


def test_gat_and_gats(varved):
    c = client(varved)
    c.set("g", b"val", flags=3)
    raw = Raw(varved)
    raw.call(b"gat 100 g nope\r\n", b"VALUE g 3 3\r\nval\r\nEND\r\n")
    raw.call(b"mg g t\r\n", b"HD t100\r\n")
    cas_before = cas_of(raw, b"g")
    raw.send(b"gats 0 g\r\n")
    head = raw.line()
    assert head.startswith(b"VALUE g 3 3 ")
    assert int(head.split()[4]) > cas_before
    raw.expect(b"val\r\nEND\r\n")
    raw.call(b"mg g t\r\n", b"HD t-1\r\n")


def test_flush_all_version_stats(varved):
    c = client(varved)
    c.set_many({"a": b"1", "b": b"2"})
    assert c.flush_all() is True
    assert c.get_many(["a", "b"]) == {}
    version = c.version()
    assert version.startswith(b"1.6.")
    assert b"varve" in version
    c.set("x", b"1")
    c.get("x")
    c.get("nope")
    stats = c.stats()
    for name in [b"pid", b"uptime", b"time", b"version", b"curr_items", b"total_items", b"bytes",
                 b"curr_connections", b"total_connections", b"cmd_get", b"cmd_set", b"get_hits",
                 b"get_misses", b"varve_keys", b"varve_disk_bytes"]:
        assert name in stats, name
    assert stats[b"curr_items"] == 1
    assert stats[b"get_hits"] >= 1
    assert stats[b"get_misses"] >= 1
    assert stats[b"curr_connections"] >= 1
    assert stats[b"pid"] == varved.proc.pid
    settings = c.stats("settings")
    assert b"item_size_max" in settings
    raw = Raw(varved)
    raw.call(b"stats nonsense\r\n", b"ERROR\r\n")


def test_flush_all_with_delay(varved):
    c = client(varved)
    c.set("a", b"1")
    assert c.flush_all(delay=1) is True
    # The flush runs about a second later; poll rather than trust the machine's timing.
    deadline = time.monotonic() + 30
    while c.get("a") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert c.get("a") is None
    c.set("b", b"2")
    assert c.flush_all(delay=600) is True
    assert c.get("b") == b"2"
    assert c.flush_all() is True
    assert c.get("b") is None


def test_noreply(varved):
    quiet = client(varved, default_noreply=True)
    c = client(varved)
    assert quiet.set("a", b"1")
    assert quiet.add("b", b"2")
    assert quiet.add("b", b"not-stored")
    assert quiet.replace("b", b"3")
    assert quiet.append("b", b"4")
    assert quiet.prepend("b", b"5")
    assert quiet.incr("a", 5, noreply=True) is None
    assert quiet.decr("a", 1, noreply=True) is None
    assert quiet.touch("a", 100)
    quiet.set_many({"m1": b"x", "m2": b"y"})
    assert quiet.delete("m1")
    quiet.version()  # a reply on the same connection: everything before it is done
    assert c.get_many(["a", "b", "m1", "m2"]) == {"a": b"5", "b": b"534", "m2": b"y"}
    assert quiet.flush_all(noreply=True)
    quiet.version()
    assert c.get_many(["a", "b", "m2"]) == {}
    # A noreply command followed by one with a reply on the same connection stays in sync.
    raw = Raw(varved)
    raw.call(b"set z 0 0 1 noreply\r\nz\r\nincr nope 1 noreply\r\nmn\r\n", b"MN\r\n")


def test_flags_round_trip(varved):
    c = client(varved, serde=serde.pickle_serde)
    values = {"int": 42, "str": "text é", "bytes": b"\x00\xff raw", "dict": {"a": [1, 2]},
              "float": 1.5}
    c.set_many(values)
    assert c.get_many(list(values)) == values
    for k, v in values.items():
        assert c.get(k) == v
    # The serde's flags are what the server stores and returns.
    raw = Raw(varved)
    raw.send(b"mg int f\r\nmg bytes f\r\nmg dict f\r\n")
    assert raw.line() == b"HD f%d\r\n" % serde.FLAG_INTEGER
    assert raw.line() == b"HD f%d\r\n" % serde.FLAG_BYTES
    assert raw.line() == b"HD f%d\r\n" % serde.FLAG_PICKLE
    plain = client(varved)
    plain.set("f", b"v", flags=4294967295)
    raw.call(b"get f\r\n", b"VALUE f 4294967295 1\r\nv\r\nEND\r\n")


def test_get_many_set_many(varved):
    c = client(varved)
    data = {f"key{i}": f"value{i}".encode() * (i % 7 + 1) for i in range(300)}
    assert c.set_many(data) == []
    got = c.get_many(list(data) + ["missing1", "missing2"])
    assert got == data
    c.delete_many(list(data)[:100])
    assert len(c.get_many(list(data))) == 200


def test_binary_and_large_values(varved):
    c = client(varved)
    blob = bytes(range(256)) * 4 + b"\r\nEND\r\n"
    c.set("bin", blob)
    assert c.get("bin") == blob
    big = b"x" * (5 << 20) + b"\r\n" + b"y" * 100
    c.set("big", big)
    assert c.get("big") == big


def test_value_limit(varved_factory):
    server = varved_factory("--max-value-bytes", "1000")
    c = client(server)
    c.set("ok", b"v" * 1000)
    assert len(c.get("ok")) == 1000
    with pytest.raises(MemcacheServerError):
        c.set("big", b"v" * 1001)
    assert c.get("ok") == b"v" * 1000  # the connection is still in sync


def test_concurrent_cas_increments(varved):
    client(varved).set("counter", b"0")
    threads, per_thread = 6, 40
    errors = []

    def work():
        try:
            c = client(varved)
            done = 0
            while done < per_thread:
                value, token = c.gets("counter")
                if c.cas("counter", str(int(value) + 1).encode(), token):
                    done += 1
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(60)
    assert not errors
    assert client(varved).get("counter") == str(threads * per_thread).encode()


def test_concurrent_incr(varved):
    client(varved).set("n", b"0")

    def work():
        c = client(varved)
        for _ in range(100):
            c.incr("n", 1)

    pool = [threading.Thread(target=work) for _ in range(4)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(60)
    assert client(varved).get("n") == b"400"


def test_meta_commands(varved):
    raw = Raw(varved)
    raw.call(b"ms a 3 F5 T0\r\nabc\r\n", b"HD\r\n")
    cas = cas_of(raw, b"a")
    raw.call(b"mg a k v f c t s O123\r\n", b"VA 3 ka f5 c%d t-1 s3 O123\r\nabc\r\n" % cas)
    raw.call(b"mg a\r\n", b"HD\r\n")
    raw.call(b"mg zz k O1\r\n", b"EN kzz O1\r\n")
    raw.call(b"mg zz q v\r\nmg zz q\r\nmn\r\n", b"MN\r\n")
    raw.call(b"mg a T30 t v\r\n", b"VA 3 t30\r\nabc\r\n")
    raw.call(b"ms a 2 MA q\r\nde\r\nmg a v\r\n", b"VA 5\r\nabcde\r\n")
    raw.call(b"ms a 1 ME\r\nx\r\n", b"NS\r\n")
    raw.call(b"ms new 1 MR\r\nx\r\n", b"NS\r\n")
    raw.call(b"ms a 1 C1 k O7\r\nx\r\n", b"EX ka O7\r\n")
    raw.call(b"ms nope 1 C5\r\nx\r\n", b"NF\r\n")
    cas = cas_of(raw, b"a")
    raw.send(b"ms a 1 C%d c\r\nz\r\n" % cas)
    line = raw.line()
    assert line.startswith(b"HD c") and int(line[4:]) > cas
    raw.call(b"md a q\r\nmd a\r\nmd a k\r\n", b"NF\r\nNF ka\r\n")
    raw.call(b"ma cnt\r\n", b"NF\r\n")
    raw.call(b"ma cnt N0 J10 v\r\n", b"VA 2\r\n10\r\n")
    raw.call(b"ma cnt v\r\nma cnt MD D4 v\r\nma cnt q\r\nmg cnt v\r\n",
             b"VA 2\r\n11\r\nVA 1\r\n7\r\nVA 1\r\n8\r\n")
    raw.call(b"mg viv N30 s v\r\n", b"VA 0 s0 W\r\n\r\n")
    raw.call(b"me nope\r\n", b"EN\r\n")
    raw.send(b"me cnt\r\n")
    assert re.match(rb"ME cnt exp=-1 la=0 cas=\d+ fetch=no cls=1 size=4\r\n", raw.line())
    raw.call(b"mg a Q\r\n", b"CLIENT_ERROR invalid flag\r\n")
    raw.call(b"mn\r\n", b"MN\r\n")


def test_meta_pipeline_with_opaques(varved):
    raw = Raw(varved)
    request = b"".join(b"ms k%d 2 q\r\nv%d\r\n" % (i, i % 10) for i in range(200))
    request += b"".join(b"mg k%d v q O%d\r\n" % (i, i) for i in range(0, 400, 2))
    request += b"mn\r\n"
    raw.send(request)
    expected = b"".join(b"VA 2 O%d\r\nv%d\r\n" % (i, i % 10) for i in range(0, 200, 2))
    expected += b"MN\r\n"
    raw.expect(expected)


def test_unix_socket(varved):
    c = Client(varved.memcached_socket, default_noreply=False, timeout=10)
    assert c.set("u", b"via unix")
    assert c.get("u") == b"via unix"
    raw = Raw(varved, unix=True)
    raw.call(b"mg u v\r\n", b"VA 8\r\nvia unix\r\n")
    raw.call(b"version\r\n", b"VERSION ")
    assert raw.line().startswith(b"1.6.")
    assert client(varved).get("u") == b"via unix"


def test_hostile_input(varved):
    malformed_before = metric(varved, "varve_malformed_requests_total", 'protocol="memcached"')

    # Garbage bytes: answered with ERROR, the connection stays usable.
    raw = Raw(varved)
    raw.call(b"\x00\x01\x02\xff\xfe garbage\r\n", b"ERROR\r\n")
    raw.call(b"\r\n", b"ERROR\r\n")
    raw.call(b"set k 0 0 -5\r\n", b"CLIENT_ERROR bad command line format\r\n")
    raw.call(b"version\r\n", b"VERSION ")
    raw.line()

    # A 100 MB announced length: refused at once; the announced bytes are swallowed.
    raw.call(b"set big 0 0 100000000\r\n", b"SERVER_ERROR object too large for cache\r\n")
    chunk = b"z" * (1 << 20)
    for _ in range(95):
        raw.send(chunk)
    raw.send(b"z" * (100000000 - 95 * len(chunk)) + b"\r\nversion\r\n")
    raw.expect(b"VERSION ")
    raw.line()
    raw.close()

    # An announced length beyond max_request_bytes: refused and disconnected.
    raw = Raw(varved)
    raw.call(b"set big 0 0 1000000000\r\n", b"SERVER_ERROR object too large for cache\r\n")
    assert raw.closed()

    # A data block without its terminator: a protocol error, then the server hangs up.
    raw = Raw(varved)
    raw.send(b"set k 0 0 3\r\nabcdef\r\nget k\r\n")
    raw.expect(b"CLIENT_ERROR bad data chunk\r\n")
    assert raw.closed()

    # A line over 8 KiB without a newline.
    raw = Raw(varved)
    raw.send(b"x" * 10000)
    raw.expect(b"SERVER_ERROR object too large for cache\r\n")
    assert raw.closed()

    # A client stalled in the middle of a data block does not hold up anyone else.
    stalled = Raw(varved)
    stalled.send(b"set slow 0 0 10\r\nabc")
    c = client(varved)
    for i in range(50):
        c.set(f"busy{i}", b"x")
        assert c.get(f"busy{i}") == b"x"
    stalled.send(b"defghij\r\n")
    stalled.expect(b"STORED\r\n")
    assert c.get("slow") == b"abcdefghij"

    # Disconnecting in the middle of a pipeline: the complete requests before the cut are done.
    cut = Raw(varved)
    cut.send(b"".join(b"set pipe%d 0 0 1\r\n%d\r\n" % (i, i % 10) for i in range(100)) +
             b"set pipe100 0 0 50\r\npartial")
    cut.sock.shutdown(socket.SHUT_RDWR)
    cut.close()
    deadline = time.time() + 5
    while time.time() < deadline and client(varved).get("pipe99") is None:
        time.sleep(0.05)
    assert client(varved).get("pipe99") == b"9"
    assert client(varved).get("pipe100") is None

    # The server still answers.
    assert client(varved).version().startswith(b"1.6.")
    raw = Raw(varved)
    raw.call(b"version\r\n", b"VERSION ")

    if malformed_before is not None:
        after = metric(varved, "varve_malformed_requests_total", 'protocol="memcached"')
        # garbage, empty line, bad length, bad data chunk, long line (the 1 GB length too)
        assert after >= malformed_before + 5


def test_request_timeout(varved_factory):
    server = varved_factory("--request-timeout-ms", "500")
    stalled = Raw(server)
    stalled.send(b"set slow 0 0 10\r\nabc")
    assert stalled.closed(timeout=5)
    swallowing = Raw(server)
    swallowing.call(b"set big 0 0 100000000\r\n", b"SERVER_ERROR object too large for cache\r\n")
    swallowing.send(b"z" * 1000)
    assert swallowing.closed(timeout=5)
    assert client(server).version().startswith(b"1.6.")


def test_values_survive_restart(varved):
    c = client(varved)
    c.set("persist", b"value", flags=7)
    c.set("ttl", b"t", expire=1000)
    c.set_many({f"many{i}": str(i).encode() for i in range(100)})
    c.delete("many0")
    c.close()
    varved.restart()
    wait_for_port(varved)
    c = client(varved)
    assert c.get("persist") == b"value"
    assert c.get("many0") is None
    assert c.get_many([f"many{i}" for i in range(1, 100)]) == {
        f"many{i}": str(i).encode() for i in range(1, 100)}
    raw = Raw(varved)
    raw.call(b"mg persist f v\r\n", b"VA 5 f7\r\nvalue\r\n")
    raw.call(b"mg ttl t\r\n", b"HD t")
    assert 990 <= int(raw.line().strip()) <= 1000
