"""An immutable table built and attached with the CLI, then served by varved beside the live data:
reads fall through to it over every protocol, writes and deletes shadow it, and INFO, the
memcached stats and /metrics count it."""
import os
import subprocess
import urllib.request

import redis
from pymemcache.client.base import Client

from conftest import _binary


def varve(*args):
    r = subprocess.run([_binary("VARVE", "varve"), *args], capture_output=True, timeout=120)
    assert r.returncode == 0, f"varve {args}: {r.stderr.decode()}"
    return r


def test_attached_table_is_served_and_counted(varved, tmp_path):
    src = tmp_path / "in.tsv"
    src.write_text("".join(f"t{i:04d}\tvalue-{i}\n" for i in range(500)))
    table = str(tmp_path / "batch.vtb")
    varve("table", "build", str(src), table)
    varved.stop()
    varve("-d", varved.data_dir, "attach", table)
    varved.start()

    r = redis.Redis(host="127.0.0.1", port=varved.redis_port)
    assert r.get("t0007") == b"value-7"
    r.set("t0008", "live")
    assert r.get("t0008") == b"live"  # live data first
    r.delete("t0009")
    assert r.get("t0009") is None  # a delete hides the table's key
    assert r.get("t0500") is None

    info = r.info("persistence")
    assert info["tables"] == 1 and info["table_entries"] == 500
    assert r.dbsize() == 1  # only the live key; the kept tombstone is not a key

    mc = Client(("127.0.0.1", varved.memcached_port))
    assert mc.get("t0010") == b"value-10"
    stats = mc.stats()
    assert stats[b"varve_tables"] == 1 and stats[b"varve_table_entries"] == 500
    mc.close()

    with urllib.request.urlopen(f"http://127.0.0.1:{varved.http_port}/metrics", timeout=10) as h:
        metrics = h.read().decode()
    assert "varve_tables 1\n" in metrics and "varve_table_entries 500\n" in metrics
    with urllib.request.urlopen(f"http://127.0.0.1:{varved.http_port}/v1/kv/t0011",
                                timeout=10) as h:
        assert h.read() == b"value-11"
    assert os.path.isdir(os.path.join(varved.data_dir, "tables"))
