"""varved as a whole: one store across protocols, graceful stop, configuration errors."""
import os
import signal
import socket
import subprocess
import threading
import urllib.request

import pymemcache.client.base
import redis

from conftest import _binary, free_port


def test_one_store_across_protocols(varved):
    r = redis.Redis(port=varved.redis_port)
    mc = pymemcache.client.base.Client(("127.0.0.1", varved.memcached_port))
    r.set("from-redis", b"r\x00value")
    assert mc.get("from-redis") == b"r\x00value"
    with urllib.request.urlopen(f"http://127.0.0.1:{varved.http_port}/v1/kv/from-redis") as resp:
        assert resp.read() == b"r\x00value"
    mc.set("from-memcached", b"m-value", flags=0)
    assert r.get("from-memcached") == b"m-value"
    req = urllib.request.Request(f"http://127.0.0.1:{varved.http_port}/v1/kv/from-http",
                                 data=b"h-value", method="PUT")
    urllib.request.urlopen(req).read()
    assert r.get("from-http") == b"h-value"
    assert mc.get("from-http") == b"h-value"
    assert r.dbsize() == 3


def test_sigterm_under_load_exits_zero_and_keeps_every_acknowledged_write(varved):
    acked = []
    stop = threading.Event()

    def writer(n):
        r = redis.Redis(port=varved.redis_port)
        i = 0
        while not stop.is_set():
            key = f"w{n}-{i}"
            try:
                r.set(key, key * 3)
            except (redis.ConnectionError, redis.TimeoutError, ConnectionResetError):
                return
            acked.append(key)
            i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    while len(acked) < 2000:
        threading.Event().wait(0.01)
    assert varved.stop(signal.SIGTERM) == 0
    stop.set()
    for t in threads:
        t.join()
    assert "stopped; store closed" in varved.log()
    varved.start()
    r = redis.Redis(port=varved.redis_port)
    missing = [k for k in acked if r.get(k) != (k * 3).encode()]
    assert missing == [], f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"


def test_port_in_use_is_a_clear_error(varved):
    other = os.path.join(varved.data_dir + "-2")
    result = subprocess.run(
        [varved.binary, "--data-dir", other, "--redis-port", str(varved.redis_port),
         "--memcached-port", "0", "--http-port", "0"],
        capture_output=True, timeout=30)
    assert result.returncode != 0
    assert b"cannot listen for redis" in result.stderr


def test_store_held_by_another_process_is_refused(varved):
    result = subprocess.run(
        [varved.binary, "--data-dir", varved.data_dir, "--redis-port", str(free_port()),
         "--memcached-port", "0", "--http-port", "0"],
        capture_output=True, timeout=30)
    assert result.returncode != 0
    assert b"locked by another process" in result.stderr


def test_help_documents_every_option():
    out = subprocess.run([_binary("VARVED", "varved"), "--help"], capture_output=True,
                         timeout=30).stdout.decode()
    for flag in ["--data-dir", "--bind", "--redis-port", "--memcached-port", "--http-port",
                 "--redis-socket", "--memcached-socket", "--http-socket", "--durability",
                 "--threads", "--max-key-bytes", "--max-value-bytes", "--max-request-bytes",
                 "--request-timeout-ms", "--config"]:
        assert flag in out, flag


def test_config_file(tmp_path):
    port = free_port()
    config = tmp_path / "varved.toml"
    config.write_text(f'redis-port = {port}\nmemcached-port = 0\nhttp-port = 0\n'
                      f'data-dir = "{tmp_path / "data"}"\n')
    proc = subprocess.Popen([_binary("VARVED", "varved"), "--config", str(config)],
                            stderr=subprocess.PIPE)
    try:
        line = proc.stderr.readline().decode()
        assert f"redis listening on 127.0.0.1:{port}" in line
        assert redis.Redis(port=port).ping()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
