"""varved's HTTP/JSON API driven by real clients: curl (as the docs use it), http.client and raw
sockets for keep-alive, pipelining and hostile input. See docs/protocols/http.md."""
import base64
import http.client
import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest


def curl(*args, check=True):
    """Runs curl -sS with args; returns stdout as bytes."""
    r = subprocess.run(["curl", "-sS", *args], capture_output=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError(f"curl {args} failed ({r.returncode}): {r.stderr.decode()}")
    return r.stdout


def curl_status(*args):
    """Runs curl and returns (status code, body)."""
    out = curl("-w", "\n%{http_code}", *args)
    body, _, code = out.rpartition(b"\n")
    return int(code), body


def base(server):
    return f"http://127.0.0.1:{server.http_port}"


def key_url(server, key):
    if isinstance(key, str):
        key = key.encode()
    return f"{base(server)}/v1/kv/{urllib.parse.quote(key, safe='')}"


def request(server, method, path, body=None, headers=None):
    """One request on a new connection; returns (status, headers dict, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def raw_exchange(server, data, read_timeout=5.0):
    """Sends data on a raw TCP connection and reads until the server closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=read_timeout) as s:
        s.sendall(data)
        return read_until_close(s)


def read_until_close(s):
    chunks = []
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    except socket.timeout:
        pass
    return b"".join(chunks)


def wait_ready(server, timeout=10):
    """Waits until the HTTP listener answers. (After restart(), conftest's start() can return
    early: it counts "listening" lines in a log that already holds the first run's.)"""
    deadline = time.time() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", server.http_port), timeout=1):
                return
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.02)


def stats(server):
    return json.loads(curl(f"{base(server)}/v1/stats"))


# ------------------------------------------------------------------------------------------------
# The documented session


def test_readme_session(varved, tmp_path):
    f = tmp_path / "greeting.txt"
    f.write_bytes(b"hello, world\n")
    out = json.loads(curl("-X", "PUT", "--data-binary", f"@{f}", f"{base(varved)}/v1/kv/greeting"))
    assert out == {"version": 1}
    assert curl(f"{base(varved)}/v1/kv/greeting") == b"hello, world\n"
    headers = curl("-sI", f"{base(varved)}/v1/kv/greeting").decode()
    assert "X-Varve-Version: 1\r\n" in headers
    assert "Content-Length: 13\r\n" in headers

    doc = json.loads(curl(f"{base(varved)}/v1/kv/greeting?format=json"))
    assert doc == {"key": "greeting", "value": "hello, world\n", "version": 1,
                   "expires_at_ms": None}
    doc = json.loads(curl("-H", "Accept: application/json", f"{base(varved)}/v1/kv/greeting"))
    assert doc["value"] == "hello, world\n"

    # TTL in seconds; the expiry comes back as a header.
    curl("-X", "PUT", "--data-binary", "temp", f"{base(varved)}/v1/kv/session:1?ttl=60")
    headers = curl("-sI", f"{base(varved)}/v1/kv/session:1").decode()
    expires = int(headers.split("X-Varve-Expires-At: ")[1].split("\r\n")[0])
    assert abs(expires - (time.time() + 60) * 1000) < 5000

    for i in range(5):
        curl("-X", "PUT", "--data-binary", f"v{i}", f"{base(varved)}/v1/kv/user:{i}")
    listing = json.loads(curl(f"{base(varved)}/v1/kv?prefix=user:&limit=3"))
    assert [item["key"] for item in listing["items"]] == ["user:0", "user:1", "user:2"]
    assert listing["next"] == "user:3"
    listing = json.loads(curl("-G", f"{base(varved)}/v1/kv", "--data-urlencode", "prefix=user:",
                              "--data-urlencode", "start=user:3", "-d", "values=false"))
    assert listing == {"items": [{"key": "user:3", "version": 6, "expires_at_ms": None},
                                 {"key": "user:4", "version": 7, "expires_at_ms": None}],
                       "next": None}

    batch = {"ops": [{"op": "put", "key": "a", "value": "1"},
                     {"op": "put", "key": "b", "value_base64": base64.b64encode(b"\xff\x00").decode(),
                      "ttl_ms": 60000},
                     {"op": "delete", "key": "greeting"}]}
    out = json.loads(curl("-X", "POST", "-H", "Content-Type: application/json",
                          "--data-binary", json.dumps(batch), f"{base(varved)}/v1/batch"))
    assert out == {"applied": 3}
    assert curl(f"{base(varved)}/v1/kv/b") == b"\xff\x00"
    code, body = curl_status(f"{base(varved)}/v1/kv/greeting")
    assert code == 404
    assert json.loads(body) == {"error": "key not found", "code": "NotFound"}

    code, body = curl_status("-X", "DELETE", f"{base(varved)}/v1/kv/a")
    assert (code, json.loads(body)) == (200, {"deleted": True})

    st = stats(varved)
    assert st["engine"]["keys"] == 7  # session:1, user:0-4, b
    assert st["server"]["protocols"]["http"]["requests"] >= 15
    assert st["server"]["index"] == "hash"

    metrics = curl(f"{base(varved)}/metrics").decode()
    assert 'varve_requests_total{protocol="http",command="PUT /v1/kv/{key}"} 7' in metrics
    assert 'varve_requests_total{protocol="http"' in metrics
    assert "varve_keys 7" in metrics
    ctype = curl("-sI", f"{base(varved)}/metrics").decode()
    assert "Content-Type: text/plain; version=0.0.4\r\n" in ctype
    assert curl(f"{base(varved)}/healthz") == b"ok\n"


def test_unix_socket(varved):
    sock = varved.http_socket
    out = json.loads(curl("--unix-socket", sock, "-X", "PUT", "--data-binary", "via unix",
                          "http://localhost/v1/kv/u"))
    assert out == {"version": 1}
    assert curl("--unix-socket", sock, "http://localhost/v1/kv/u") == b"via unix"
    assert curl(f"{base(varved)}/v1/kv/u") == b"via unix"
    assert curl("--unix-socket", sock, "http://localhost/healthz") == b"ok\n"


def test_errors_and_conditional_writes(varved):
    url = key_url(varved, "c")
    code, body = curl_status("-X", "PUT", "-H", "If-None-Match: *", "--data-binary", "1", url)
    assert (code, json.loads(body)) == (201, {"version": 1})
    code, body = curl_status("-X", "PUT", "-H", "If-None-Match: *", "--data-binary", "2", url)
    assert code == 412 and json.loads(body)["code"] == "Aborted"
    code, body = curl_status("-X", "PUT", "-H", "If-Match: 99", "--data-binary", "2", url)
    assert code == 412
    code, body = curl_status("-X", "PUT", "-H", 'If-Match: "1"', "--data-binary", "2", url)
    assert (code, json.loads(body)) == (200, {"version": 2})
    code, body = curl_status("-X", "DELETE", "-H", "If-Match: 1", url)
    assert code == 412
    code, body = curl_status("-X", "DELETE", "-H", "If-Match: 2", url)
    assert (code, json.loads(body)) == (200, {"deleted": True})

    code, body = curl_status(f"{base(varved)}/nowhere")
    assert (code, json.loads(body)["code"]) == (404, "NotFound")
    status, headers, body = request(varved, "POST", "/v1/kv/x", body=b"")
    assert status == 405 and headers["Allow"] == "GET, HEAD, PUT, DELETE"
    code, body = curl_status(f"{base(varved)}/v1/kv/a/b")
    assert code == 400 and "%2F" in json.loads(body)["error"]
    code, body = curl_status(f"{base(varved)}/v1/kv/%zz")
    assert code == 400
    code, body = curl_status("-X", "POST", "--data-binary", '{"ops":[{"op":"put","key":"k"}]}',
                             f"{base(varved)}/v1/batch")
    assert (code, json.loads(body)["error"]) == (400, "ops[0]: missing value (or value_base64)")
    code, body = curl_status("-X", "POST", "--data-binary", '{"ops":[', f"{base(varved)}/v1/batch")
    assert code == 400 and "not valid JSON" in json.loads(body)["error"]


def test_binary_keys_and_values(varved):
    value = bytes(range(256)) * 4
    key = bytes(range(256))
    status, headers, body = request(varved, "PUT", key_url(varved, key)[len(base(varved)):],
                                    body=value)
    assert status == 201
    status, headers, body = request(varved, "GET", key_url(varved, key)[len(base(varved)):])
    assert (status, body) == (200, value)
    assert headers["Content-Type"] == "application/octet-stream"
    doc = json.loads(curl(key_url(varved, key) + "?format=json"))
    assert base64.b64decode(doc["key_base64"]) == key
    assert base64.b64decode(doc["value_base64"]) == value
    # curl --data-binary from a file with every byte value.
    listing = json.loads(curl(f"{base(varved)}/v1/kv?values=true"))
    assert base64.b64decode(listing["items"][0]["value_base64"]) == value
    # A UTF-8 key and value stay JSON strings.
    request(varved, "PUT", "/v1/kv/" + urllib.parse.quote("ключ/é", safe=""), body="значение".encode())
    doc = json.loads(curl(key_url(varved, "ключ/é") + "?format=json"))
    assert (doc["key"], doc["value"]) == ("ключ/é", "значение")


def test_large_value_with_expect_continue(varved, tmp_path):
    # curl sends "Expect: 100-continue" for large uploads; the server must answer it promptly.
    f = tmp_path / "big.bin"
    data = bytes(range(256)) * (8 << 10)  # 2 MiB
    f.write_bytes(data)
    start = time.time()
    out = curl("-H", "Expect: 100-continue", "--expect100-timeout", "30", "-T", str(f),
               f"{base(varved)}/v1/kv/big")
    assert json.loads(out) == {"version": 1}
    assert time.time() - start < 20  # without a 100 Continue, curl would wait 30 s
    assert curl(f"{base(varved)}/v1/kv/big") == data
    # Chunked upload.
    out = curl("-X", "PUT", "-H", "Transfer-Encoding: chunked", "--data-binary", f"@{f}",
               f"{base(varved)}/v1/kv/big2")
    assert json.loads(out) == {"version": 2}
    assert curl(f"{base(varved)}/v1/kv/big2") == data


def test_value_limit(varved_factory, tmp_path):
    server = varved_factory("--max-value-bytes", "1000", "--max-key-bytes", "10")
    f = tmp_path / "v.bin"
    f.write_bytes(b"x" * 1001)
    code, body = curl_status("-X", "PUT", "--data-binary", f"@{f}", f"{base(server)}/v1/kv/k")
    assert (code, json.loads(body)["code"]) == (413, "TooLarge")
    code, body = curl_status("-X", "PUT", "-H", "Expect: 100-continue", "--data-binary", f"@{f}",
                             f"{base(server)}/v1/kv/k")
    assert code == 413
    code, body = curl_status(f"{base(server)}/v1/kv/{'k' * 11}")
    assert code == 414
    code, _ = curl_status("-X", "PUT", "--data-binary", "ok", f"{base(server)}/v1/kv/{'k' * 10}")
    assert code == 201


# ------------------------------------------------------------------------------------------------
# Connections: keep-alive, pipelining, HTTP/1.0


def test_keep_alive_reuses_one_connection(varved):
    before = stats(varved)["server"]["protocols"]["http"]["connections_total"]
    conn = http.client.HTTPConnection("127.0.0.1", varved.http_port, timeout=10)
    for i in range(50):
        conn.request("PUT", f"/v1/kv/k{i}", body=f"v{i}".encode())
        r = conn.getresponse()
        assert r.status == 201
        assert json.loads(r.read()) == {"version": i + 1}
        conn.request("GET", f"/v1/kv/k{i}")
        r = conn.getresponse()
        assert (r.status, r.read()) == (200, f"v{i}".encode())
    sock = conn.sock
    conn.request("GET", "/healthz")
    assert conn.getresponse().read() == b"ok\n"
    assert conn.sock is sock
    conn.close()
    after = stats(varved)["server"]["protocols"]["http"]["connections_total"]
    assert after - before == 2  # the http.client connection and the first stats call's curl


def test_pipelined_requests(varved):
    reqs = (b"PUT /v1/kv/p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /v1/kv/p HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /v1/kv/missing HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    out = raw_exchange(varved, reqs)
    assert out.count(b"HTTP/1.1 ") == 4
    assert out.startswith(b"HTTP/1.1 201 Created\r\n")
    assert b"\r\n\r\nabcHTTP/1.1 404 Not Found\r\n" in out
    assert out.endswith(b"Connection: close\r\n\r\nok\n")
    # Many requests in one write, byte by byte in another.
    many = b"GET /v1/kv/p HTTP/1.1\r\nHost: x\r\n\r\n" * 200
    with socket.create_connection(("127.0.0.1", varved.http_port), timeout=10) as s:
        s.sendall(many + b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
        out = read_until_close(s)
    assert out.count(b"abc") == 200
    with socket.create_connection(("127.0.0.1", varved.http_port), timeout=10) as s:
        for b in b"GET /v1/kv/p HTTP/1.1\r\nConnection: close\r\n\r\n":
            s.send(bytes([b]))
        assert read_until_close(s).endswith(b"\r\n\r\nabc")


def test_http_1_0(varved):
    curl("-X", "PUT", "--data-binary", "old", f"{base(varved)}/v1/kv/h")
    out = curl("--http1.0", "-i", f"{base(varved)}/v1/kv/h")
    assert b"Connection: close\r\n" in out and out.endswith(b"\r\n\r\nold")
    out = raw_exchange(varved, b"GET /v1/kv/h HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"old")


# ------------------------------------------------------------------------------------------------
# Hostile input


def test_garbage_gets_400_and_close(varved):
    for garbage in [b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", b"*1\r\n$4\r\nPING\r\n",
                    b"hello world\r\n\r\n", b"GET / HTTP/1.1\r\nno colon here\r\n\r\n"]:
        out = raw_exchange(varved, garbage)
        assert out.startswith(b"HTTP/1.1 400 Bad Request\r\n"), (garbage, out)
        assert b"Connection: close\r\n" in out
    assert curl(f"{base(varved)}/healthz") == b"ok\n"
    assert stats(varved)["server"]["protocols"]["http"]["malformed"] == 4
    metrics = curl(f"{base(varved)}/metrics").decode()
    assert 'varve_disconnects_total{protocol="http",reason="protocol_error"} 4' in metrics


def test_huge_content_length_is_refused(varved):
    with socket.create_connection(("127.0.0.1", varved.http_port), timeout=10) as s:
        s.sendall(b"PUT /v1/kv/huge HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n")
        out = read_until_close(s)
    assert out.startswith(b"HTTP/1.1 413 Payload Too Large\r\n")
    assert b"Connection: close\r\n" in out
    metrics = curl(f"{base(varved)}/metrics").decode()
    assert 'varve_disconnects_total{protocol="http",reason="too_large"} 1' in metrics
    # Also a header section that never ends.
    with socket.create_connection(("127.0.0.1", varved.http_port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        try:
            for _ in range(100):
                s.sendall(b"X-Filler: " + b"x" * 8000 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        out = read_until_close(s)
    assert out.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")


def test_slow_client_does_not_block_others(varved_factory):
    server = varved_factory("--request-timeout-ms", "1500")
    slow = socket.create_connection(("127.0.0.1", server.http_port), timeout=10)
    slow.sendall(b"GET /v1/kv/x HTTP/1.1\r\nHost: sl")  # stalls mid-header
    start = time.time()
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=10)
    for i in range(20):
        conn.request("PUT", f"/v1/kv/k{i}", body=b"v")
        r = conn.getresponse()
        assert (r.status, r.read()) == (201, b'{"version":%d}\n' % (i + 1))
    conn.close()
    assert curl(f"{base(server)}/healthz") == b"ok\n"
    # The stalled client is cut off after the request timeout.
    out = read_until_close(slow)
    slow.close()
    assert out == b""
    assert time.time() - start < 8
    metrics = curl(f"{base(server)}/metrics").decode()
    assert 'varve_disconnects_total{protocol="http",reason="timeout"} 1' in metrics


def test_slow_client_stalling_mid_body_is_cut_off(varved_factory):
    server = varved_factory("--request-timeout-ms", "1000")
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=6) as s:
        s.sendall(b"PUT /v1/kv/x HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc")
        start = time.time()
        assert read_until_close(s) == b""
        assert time.time() - start < 5


def test_client_dropping_mid_body(varved):
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", varved.http_port), timeout=10) as s:
            s.sendall(b"PUT /v1/kv/dropped HTTP/1.1\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000)
    with socket.create_connection(("127.0.0.1", varved.http_port), timeout=10) as s:
        s.sendall(b"POST /v1/batch HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"ops\":[{\"op\":\"")
    code, _ = curl_status(f"{base(varved)}/v1/kv/dropped")
    assert code == 404
    assert curl(f"{base(varved)}/healthz") == b"ok\n"
    deadline = time.time() + 5
    while time.time() < deadline:
        if stats(varved)["server"]["protocols"]["http"]["connections_open"] == 1:
            break
        time.sleep(0.05)
    assert stats(varved)["server"]["protocols"]["http"]["connections_open"] == 1  # stats itself


# ------------------------------------------------------------------------------------------------
# Concurrency, ordered listing, restart


def test_concurrent_compare_and_set_counter(varved):
    curl("-X", "PUT", "--data-binary", "0", f"{base(varved)}/v1/kv/counter")
    threads, per_thread = 4, 25
    errors = []

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", varved.http_port, timeout=30)
        try:
            done = 0
            while done < per_thread:
                conn.request("GET", "/v1/kv/counter")
                r = conn.getresponse()
                value, version = int(r.read()), r.getheader("X-Varve-Version")
                conn.request("PUT", "/v1/kv/counter", body=str(value + 1).encode(),
                             headers={"If-Match": version})
                r = conn.getresponse()
                r.read()
                if r.status == 200:
                    done += 1
                elif r.status != 412:
                    errors.append(r.status)
                    return
        finally:
            conn.close()

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    assert curl(f"{base(varved)}/v1/kv/counter") == str(threads * per_thread).encode()


@pytest.mark.parametrize("index", ["hash", "ordered"])
def test_listing_pages_through_every_key(varved_factory, index):
    server = varved_factory("--index", index)
    keys = [f"item:{i:04d}" for i in range(250)]
    ops = [{"op": "put", "key": k, "value": k.upper()} for k in keys]
    assert json.loads(curl("-X", "POST", "--data-binary", json.dumps({"ops": ops}),
                           f"{base(server)}/v1/batch")) == {"applied": 250}
    seen, start, pages = [], "", 0
    while True:
        q = urllib.parse.urlencode({"prefix": "item:", "limit": 100, "start": start})
        page = json.loads(curl(f"{base(server)}/v1/kv?{q}"))
        seen += [(i["key"], i["value"]) for i in page["items"]]
        pages += 1
        if page["next"] is None:
            break
        start = page["next"]
    assert pages == 3
    assert seen == [(k, k.upper()) for k in keys]
    assert stats(server)["server"]["index"] == index


def test_data_survives_restart(varved):
    curl("-X", "PUT", "--data-binary", "durable", f"{base(varved)}/v1/kv/persist")
    curl("-X", "POST", "--data-binary",
         json.dumps({"ops": [{"op": "put", "key": "b1", "value": "x"},
                             {"op": "put", "key_base64": "AP8=", "value_base64": "/wA="}]}),
         f"{base(varved)}/v1/batch")
    varved.restart()
    wait_ready(varved)
    assert curl(f"{base(varved)}/v1/kv/persist") == b"durable"
    assert curl(f"{base(varved)}/v1/kv/b1") == b"x"
    assert curl(f"{base(varved)}/v1/kv/%00%FF") == b"\xff\x00"
    status, headers, _ = request(varved, "GET", "/v1/kv/persist")
    assert headers["X-Varve-Version"] == "1"
