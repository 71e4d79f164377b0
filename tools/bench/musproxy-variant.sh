#!/usr/bin/env bash
# tools/bench/musproxy-variant.sh VARIANT BUILD CONF WORK: starts musproxy for
# a benchmark variant and stays in the foreground (the harness stops the
# whole session with SIGTERM):
#   policy  the shipped example policy, with the sample category lists
#           imported into WORK/categories.db first;
#   map     a mus-headend (in a session of its own, so that the harness
#           measures musproxy alone) serving 100 000 sessions + one for
#           127.0.0.1; musproxy starts once the headend listens, so the
#           snapshot is in the map before the harness's warm-up ends.
#   store   the transaction store on (a fresh SQLite file each start).
# Loopback only.
set -euo pipefail
variant=$1 build=$2 conf=$3 work=$4
repo=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$work/run"

case $variant in
store)
    rm -f "$work"/musproxy-store.db*    # a fresh store each start
    exec "$build/musproxy" -c "$conf/musproxy-store.yaml"
    ;;
policy)
    "$build/musctl" categories import "$repo/etc/categories" --db "$work/categories.db" >/dev/null
    exec "$build/musproxy" -c "$conf/musproxy-policy.yaml"
    ;;
map)
    d=$work/map
    mkdir -p "$d"
    if [[ ! -f $d/sessions.jsonl ]]; then
        python3 - "$d/sessions.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    f.write(json.dumps({"sid": "bench-client", "ips": ["127.0.0.1"], "id": {"type": "user", "name": "bench-user", "domain": "BENCH"},
                        "groups": ["eng"], "started": 1763800000, "client_ip": "198.51.100.1", "tunnel": "ssl"}) + "\n")
    for i in range(100000):
        ip = "10.%d.%d.%d" % (1 + (i >> 16), (i >> 8) & 255, i & 255)
        f.write(json.dumps({"sid": "s%d" % i, "ips": [ip], "id": {"type": "user", "name": "user%d@corp.example" % i, "domain": "CORP"},
                            "groups": ["staff"], "started": 1763800000 + i, "client_ip": "198.51.100.2", "tunnel": "ssl"}) + "\n")
PY
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
            -keyout "$d/key.pem" -out "$d/ca.pem" -subj /CN=127.0.0.1 \
            -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
        head -c 24 /dev/urandom | base64 > "$d/secret"
        chmod 600 "$d/secret"
    fi
    hport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    sed -i "s|@HEADEND_PORT@|$hport|" "$conf/musproxy-map.yaml"
    setsid "$build/mus-headend" --cert "$d/ca.pem" --key "$d/key.pem" --password-file "$d/secret" \
        --listen "127.0.0.1:$hport" --sessions "$d/sessions.jsonl" --kdf-iter 10000 \
        --log-level warn &
    headend=$!
    trap 'kill -TERM $headend 2>/dev/null' EXIT
    for _ in $(seq 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$hport") 2>/dev/null && break
        sleep 0.05
    done
    "$build/musproxy" -c "$conf/musproxy-map.yaml" &
    proxy=$!
    trap 'kill -TERM $proxy $headend 2>/dev/null; wait $proxy' TERM INT
    for _ in $(seq 200); do
        n=$("$build/musctl" status --socket "$work/run/musproxy-map.sock" --json 2>/dev/null |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["map"]["entries"])' 2>/dev/null || echo 0)
        [[ $n -ge 100001 ]] && break
        sleep 0.1
    done
    echo "musproxy-variant: map holds $n entries" >&2
    wait $proxy
    ;;
*)
    echo "usage: $0 policy|map BUILD CONF WORK" >&2
    exit 2
    ;;
esac
