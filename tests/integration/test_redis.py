"""varved's Redis front end with real clients: redis-cli (TCP and Unix socket, sessions, --scan),
python3-redis (every supported command, pipelines, binary data, scan_iter, concurrent INCR), hostile
input (garbage, absurd lengths, stalls, disconnects) and restarts. Each test gets its own server
(see conftest.py)."""
import random
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
import redis


def client(server, **kwargs):
    return redis.Redis(host="127.0.0.1", port=server.redis_port, socket_timeout=10, **kwargs)


def cli(server, *args, stdin=None, socket_path=False):
    target = ["-s", server.redis_socket] if socket_path else ["-p", str(server.redis_port)]
    result = subprocess.run(["redis-cli", *target, *args], input=stdin, capture_output=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.decode()


def raw_exchange(server, data, timeout=5.0):
    """Sends data on a fresh connection and returns everything received until the server closes
    it (or the timeout passes)."""
    with socket.create_connection(("127.0.0.1", server.redis_port), timeout=timeout) as s:
        s.sendall(data)
        received = b""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                return received, True
            received += chunk
        return received, False


def metric(server, name, labels):
    """A sample from /metrics, or None if the HTTP front end does not serve it."""
    url = f"http://127.0.0.1:{server.http_port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return None
    prefix = f"{name}{{{labels}}} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix):])
    return None


def wait_until_serving(server, timeout=20):
    """After restart(): conftest counts "listening" lines in a log that still holds the previous
    run's, so the new process may not listen yet."""
    deadline = time.time() + timeout
    while True:
        try:
            if client(server).ping():
                return
        except redis.ConnectionError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def assert_alive(server):
    assert client(server).ping() is True


def assert_malformed_counted(server, at_least):
    value = metric(server, "varve_malformed_requests_total", 'protocol="redis"')
    if value is None:
        pytest.skip("/metrics not served")
    assert value >= at_least


# --- redis-cli -----------------------------------------------------------------------------------

def test_redis_cli_tcp_and_unix_socket(varved):
    assert cli(varved, "ping") == "PONG\n"
    assert cli(varved, "set", "greeting", "hello world") == "OK\n"
    assert cli(varved, "get", "greeting", socket_path=True) == "hello world\n"
    assert cli(varved, "ping", socket_path=True) == "PONG\n"
    assert cli(varved, "incr", "n", socket_path=True) == "1\n"
    assert cli(varved, "get", "nope") == "\n"
    assert cli(varved, "dbsize") == "2\n"
    out = cli(varved, "nosuchcommand", "x")
    assert "ERR unknown command 'nosuchcommand', with args beginning with: 'x'" in out
    assert cli(varved, "info", "keyspace").replace("\r", "") == \
        "# Keyspace\ndb0:keys=2,expires=0,avg_ttl=0\n"


def test_redis_cli_session(varved):
    session = b"set visits 10\nget visits\nincr visits\nincrby visits 5\nttl visits\n" \
              b"expire visits 100\nttl visits\nset 'spaced key' \"a b\"\nget 'spaced key'\n" \
              b"del visits\nttl visits\n"
    out = cli(varved, stdin=session)
    assert out.split("\n") == ["OK", "10", "11", "16", "-1", "1", "100", "OK", "a b", "1", "-2",
                               ""]
    out = cli(varved, stdin=b"set k v\nget k\n", socket_path=True)
    assert out == "OK\nv\n"


def test_redis_cli_resp3(varved):
    # redis-cli -3 sends HELLO 3 first and prints RESP3 types as such.
    out = cli(varved, "-3", stdin=b"set a 1\nget a\nget nope\nconfig get databases\nhello\n")
    lines = out.split("\n")
    # Maps print as "key value" lines.
    assert lines[:4] == ["OK", "1", "", "databases 1"], out
    assert "proto 3" in lines, out


def test_redis_cli_scan_pattern(varved):
    r = client(varved)
    users = {f"user:{i}" for i in range(300)}
    others = {f"item:{i}" for i in range(200)}
    r.mset({k: "x" for k in users | others})
    out = cli(varved, "--scan", "--pattern", "user:*")
    assert set(out.split()) == users
    assert len(out.split()) == len(users)
    out = cli(varved, "--scan")
    assert set(out.split()) == users | others


def test_inline_commands_like_telnet(varved):
    reply, _ = raw_exchange(varved, b"PING\r\nSET a \"b c\"\r\nGET a\nQUIT\r\n")
    assert reply == b"+PONG\r\n+OK\r\n$3\r\nb c\r\n+OK\r\n"


# --- python3-redis -------------------------------------------------------------------------------

def test_strings(varved):
    r = client(varved)
    assert r.set("k", "v") is True
    assert r.get("k") == b"v"
    assert r.get("missing") is None
    assert r.set("k", "v2", nx=True) is None
    assert r.set("k", "v2", xx=True) is True
    assert r.set("absent", "v", xx=True) is None
    assert r.set("k", "v3", get=True) == b"v2"
    assert r.set("k", "v4", ex=100) is True
    assert r.ttl("k") == 100
    assert r.set("k", "v5", keepttl=True) is True
    assert 99 <= r.ttl("k") <= 100
    assert r.set("k", "v6", px=50000) is True
    assert 49 <= r.ttl("k") <= 50
    assert r.set("k", "v7", exat=int(time.time()) + 300) is True
    assert 298 <= r.ttl("k") <= 300
    assert r.set("k", "v8", pxat=int(time.time() * 1000) + 400000) is True
    assert 398 <= r.ttl("k") <= 400
    assert r.set("k", "v9") is True
    assert r.ttl("k") == -1
    with pytest.raises(redis.ResponseError, match="invalid expire time in 'set' command"):
        r.set("k", "v", ex=0)
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("SET", "k", "v", "NX", "XX")

    assert r.setnx("n", "1") is True
    assert r.setnx("n", "2") is False
    assert r.setex("e", 100, "v") is True
    assert r.ttl("e") == 100
    assert r.psetex("p", 100000, "v") is True
    assert 99000 < r.pttl("p") <= 100000
    assert r.getset("n", "3") == b"1"
    assert r.getdel("n") == b"3"
    assert r.getdel("n") is None
    r.set("g", "v")
    assert r.getex("g", ex=100) == b"v"
    assert r.ttl("g") == 100
    assert r.getex("g", persist=True) == b"v"
    assert r.ttl("g") == -1
    assert r.getex("g", px=5000) == b"v"
    assert 4 <= r.ttl("g") <= 5
    assert r.getex("g", exat=int(time.time()) + 50) == b"v"
    assert r.getex("g", pxat=int(time.time() * 1000) + 60000) == b"v"
    assert 58 <= r.ttl("g") <= 60

    assert r.mset({"a": "1", "b": "2"}) is True
    assert r.mget("a", "nope", "b") == [b"1", None, b"2"]
    assert r.msetnx({"a": "9", "c": "3"}) is False
    assert r.get("c") is None
    assert r.msetnx({"c": "3", "d": "4"}) is True
    assert r.mget(["c", "d"]) == [b"3", b"4"]

    assert r.incr("i") == 1
    assert r.incrby("i", 10) == 11
    assert r.decr("i") == 10
    assert r.decrby("i", 20) == -10
    assert r.incrbyfloat("f", 10.5) == 10.5
    assert r.incrbyfloat("f", 0.1) == pytest.approx(10.6)
    assert r.get("f") == b"10.6"
    with pytest.raises(redis.ResponseError, match="value is not an integer or out of range"):
        r.incr("k")
    r.set("big", str(2 ** 63 - 1))
    with pytest.raises(redis.ResponseError, match="increment or decrement would overflow"):
        r.incr("big")
    with pytest.raises(redis.ResponseError, match="value is not a valid float"):
        r.incrbyfloat("k", 1)

    assert r.append("s", "Hello") == 5
    assert r.append("s", " World") == 11
    assert r.strlen("s") == 11
    assert r.getrange("s", 0, 4) == b"Hello"
    assert r.getrange("s", -5, -1) == b"World"
    assert r.setrange("s", 6, "Redis") == 11
    assert r.get("s") == b"Hello Redis"
    assert r.setrange("pad", 3, "x") == 4
    assert r.get("pad") == b"\x00\x00\x00x"


def test_keyspace(varved):
    r = client(varved)
    r.mset({"a": "1", "b": "2", "c": "3"})
    assert r.exists("a", "b", "nope") == 2
    assert r.delete("a", "nope") == 1
    assert r.unlink("b") == 1
    assert r.exists("a", "b") == 0
    assert r.type("c") == b"string"
    assert r.type("nope") == b"none"
    assert r.ttl("c") == -1
    assert r.ttl("nope") == -2
    assert r.expire("c", 100) is True
    assert r.ttl("c") == 100
    assert r.pexpire("c", 50000) is True
    assert 49000 < r.pttl("c") <= 50000
    assert r.expireat("c", int(time.time()) + 200) is True
    assert 198 <= r.ttl("c") <= 200
    assert r.pexpireat("c", int(time.time() * 1000) + 300000) is True
    assert r.expire("c", 10, gt=True) is False
    assert r.expire("c", 1000, gt=True) is True
    assert r.expire("c", 10, lt=True) is True
    assert r.expire("c", 10, nx=True) is False
    assert r.persist("c") is True
    assert r.persist("c") is False
    assert r.expire("c", 10, xx=True) is False
    assert r.expire("nope", 10) is False
    r.mset({"hello": "1", "hallo": "1", "hxllo": "1", "world": "1"})
    assert set(r.keys("h?llo")) == {b"hello", b"hallo", b"hxllo"}
    assert set(r.keys("h[ae]llo")) == {b"hello", b"hallo"}
    assert set(r.keys("h[^e]llo")) == {b"hallo", b"hxllo"}
    assert set(r.keys("h[a-b]llo")) == {b"hallo"}
    assert set(r.keys("*")) == {b"c", b"hello", b"hallo", b"hxllo", b"world"}
    assert r.dbsize() == 5
    cursor, keys = r.scan(0, match="h*", count=100)
    assert cursor == 0 and set(keys) == {b"hello", b"hallo", b"hxllo"}
    cursor, keys = r.scan(0, count=100, _type="string")
    assert cursor == 0 and len(keys) == 5
    assert r.scan(0, _type="list") == (0, [])
    assert r.flushdb() is True
    assert r.dbsize() == 0
    r.set("x", "1")
    assert r.flushall() is True
    assert r.keys() == []
    r.set("short", "v", px=50)
    time.sleep(0.15)
    assert r.get("short") is None
    assert r.exists("short") == 0
    assert r.keys() == []


def test_server_commands(varved):
    r = client(varved)
    assert r.ping() is True
    assert r.echo("hi") == b"hi"
    assert r.execute_command("SELECT", 0) is True
    with pytest.raises(redis.ResponseError, match="DB index is out of range"):
        r.execute_command("SELECT", 1)
    info = r.info()
    assert info["redis_version"] == "7.0.0"
    assert "total_commands_processed" in info and "malformed_requests" in info
    assert "index_memory_bytes" in info and "durability" in info
    r.set("k", "v")
    assert r.info("keyspace") == {"db0": {"keys": 1, "expires": 0, "avg_ttl": 0}}
    assert r.info("stats")["total_commands_processed"] >= 5
    commands = r.command()
    assert {"get", "set", "scan", "incrbyfloat"} <= set(commands)
    assert commands["get"]["arity"] == 2
    assert r.command_count() == len(commands)
    assert r.execute_command("COMMAND", "DOCS") == {}  # redis-py turns the flat map into a dict
    assert isinstance(r.client_id(), int)
    assert r.client_getname() is None
    assert r.client_setname("tester") is True
    assert r.client_getname() == "tester"
    hello = r.execute_command("HELLO", 2)
    assert hello[:6] == [b"server", b"redis", b"version", b"7.0.0", b"proto", 2]
    with pytest.raises(redis.ResponseError, match="NOPROTO unsupported protocol version"):
        r.execute_command("HELLO", 4)
    with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'get' command"):
        r.execute_command("GET")
    assert r.config_get("save") == {"save": ""}
    # QUIT: +OK, then the server closes the connection.
    reply, closed = raw_exchange(varved, b"*1\r\n$4\r\nQUIT\r\n*1\r\n$4\r\nPING\r\n")
    assert reply == b"+OK\r\n" and closed


def test_unix_socket_client(varved):
    r = redis.Redis(unix_socket_path=varved.redis_socket, socket_timeout=10)
    assert r.set("u", "1") is True
    assert client(varved).get("u") == b"1"


def test_pipeline_of_1000(varved):
    r = client(varved)
    pipe = r.pipeline(transaction=False)
    for i in range(1000):
        pipe.set(f"key:{i}", f"value:{i}")
    assert pipe.execute() == [True] * 1000
    pipe = r.pipeline(transaction=False)
    for i in range(1000):
        pipe.get(f"key:{i}")
        pipe.incr("pipelined")
    results = pipe.execute()
    assert results[0::2] == [f"value:{i}".encode() for i in range(1000)]
    assert results[1::2] == list(range(1, 1001))


def test_binary_values_with_every_byte(varved):
    r = client(varved)
    every = bytes(range(256))
    r.set(every, every * 3)
    assert r.get(every) == every * 3
    for b in range(256):
        key = b"bin:" + bytes([b])
        r.set(key, bytes([b]) + every)
    pipe = r.pipeline(transaction=False)
    for b in range(256):
        pipe.get(b"bin:" + bytes([b]))
    assert pipe.execute() == [bytes([b]) + every for b in range(256)]
    big = bytes(random.Random(1).getrandbits(8) for _ in range(1 << 20))
    r.set("big", big)
    assert r.get("big") == big
    assert set(r.scan_iter(match=b"bin:*", count=50)) == {b"bin:" + bytes([b]) for b in range(256)}


def test_scan_iter(varved):
    r = client(varved)
    want = {f"scan:{i}".encode() for i in range(1000)}
    r.mset({k: b"1" for k in want})
    r.set("other", "x")
    got = list(r.scan_iter(match="scan:*", count=100))
    assert len(got) == 1000 and set(got) == want
    got = list(r.scan_iter(count=7))
    assert len(got) == 1001


def test_concurrent_incr_is_exact(varved):
    threads, per_thread = 8, 500
    errors = []

    def worker():
        try:
            r = client(varved)
            for _ in range(per_thread):
                r.incr("counter")
                r.append("log", "x")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    r = client(varved)
    assert int(r.get("counter")) == threads * per_thread
    assert r.strlen("log") == threads * per_thread


# --- hostile input -------------------------------------------------------------------------------

def test_random_garbage(varved):
    rng = random.Random(42)
    for i in range(30):
        blob = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096)))
        if i % 2 == 0:
            blob = b"*" + blob  # a multibulk header that cannot parse
        raw_exchange(varved, blob, timeout=0.5)
        assert_alive(varved)
    assert_malformed_counted(varved, 15)


@pytest.mark.parametrize("request_bytes,error", [
    (b"*999999999999\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*1\r\n$-2\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10737418240\r\n",
     b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*1\r\n+PING\r\n", b"-ERR Protocol error: expected '$', got '+'\r\n"),
    (b"SET a \"b\r\n", b"-ERR Protocol error: unbalanced quotes in request\r\n"),
])
def test_protocol_errors_close(varved, request_bytes, error):
    reply, closed = raw_exchange(varved, b"PING\r\n" + request_bytes + b"PING\r\n")
    assert reply == b"+PONG\r\n" + error
    assert closed
    assert_alive(varved)
    assert_malformed_counted(varved, 1)


def test_too_big_inline_request(varved):
    reply, closed = raw_exchange(varved, b"a" * 70000)
    assert reply == b"-ERR Protocol error: too big inline request\r\n" and closed
    assert_alive(varved)


def test_stalled_client_does_not_block_others(varved):
    with socket.create_connection(("127.0.0.1", varved.redis_port), timeout=10) as stalled:
        stalled.sendall(b"*3\r\n$3\r\nSET\r\n$7\r\nstalled\r\n$9\r\nhalf")
        r = client(varved)
        for i in range(100):
            assert r.set(f"k{i}", i) is True
        assert r.get("k99") == b"99"
        assert r.get("stalled") is None
        stalled.sendall(b"-done\r\n")
        assert stalled.recv(100) == b"+OK\r\n"
    assert r.get("stalled") == b"half-done"


def test_disconnect_mid_pipeline(varved):
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", varved.redis_port), timeout=10) as s:
            payload = b"".join(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nv\r\n" % (len(k), k)
                               for k in (f"mid:{i}".encode() for i in range(2000)))
            s.sendall(payload + b"*3\r\n$3\r\nSET\r\n$3\r\nend\r\n$100\r\npartial")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    assert_alive(varved)
    r = client(varved)
    assert r.get("end") is None
    assert r.set("after", "ok") is True


def test_limits(varved_factory):
    server = varved_factory("--max-key-bytes", "10", "--max-value-bytes", "100",
                            "--max-request-bytes", "10000")
    r = client(server)
    assert r.set("k" * 10, "v" * 100) is True
    with pytest.raises(redis.ResponseError, match="key exceeds maximum allowed size"):
        r.set("k" * 11, "v")
    with pytest.raises(redis.ResponseError, match="string exceeds maximum allowed size"):
        r.set("k", "v" * 101)
    with pytest.raises(redis.ResponseError, match="string exceeds maximum allowed size"):
        r.append("k" * 10, "x")
    reply, closed = raw_exchange(server, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$20000\r\n")
    assert reply == b"-ERR Protocol error: invalid bulk length\r\n" and closed
    assert_alive(server)
    assert r.get("k" * 10) == b"v" * 100


def test_data_survives_restart(varved):
    r = client(varved)
    r.mset({f"persist:{i}": f"v{i}" for i in range(500)})
    r.set("ttl", "x", ex=1000)
    r.incrby("count", 41)
    r.incr("count")
    r.close()
    varved.restart()
    wait_until_serving(varved)
    r = client(varved)
    assert r.get("count") == b"42"
    assert r.mget([f"persist:{i}" for i in range(500)]) == [f"v{i}".encode() for i in range(500)]
    assert 990 <= r.ttl("ttl") <= 1000
    assert r.dbsize() == 502
