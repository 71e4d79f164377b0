/*
 * tests/unit/policy/test_config_errors.c: what the configuration loader
 * (policy/config.c) says of a file it refuses: the exact message, with line
 * and column, of each kind of broken file in every section, the list and
 * file size limits, the file's name in load errors, and a short error
 * buffer. The policy lists' limits are in test_config_policy.c.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../../common/log.h"
#include "../../../policy/config.h"
#include "configtest.h"

struct bad_case {
    const char *yaml;
    const char *message;
};

#define TOP_KEYS "(expected one of: proxy, log_level, mus, identity_profiles, " \
    "access_policies, time_ranges, custom_categories, categories, authentication, extended_log, store, reports, pac, wccp, gre, radius, admin, run)"
#define LISTEN_HINT "(use 1.2.3.4:port or [::1]:port, numeric)"
#define CIDR_HINT "is not an address prefix (e.g. 10.0.0.0/8, fc00::/7)"
#define PROXY_KEYS "(expected one of: listen, workers, clients, deny_destinations, " \
    "connect_ports, max_connections, tunnel_relay, timeouts, access_log, visible_hostname, " \
    "transparent)"

static const struct bad_case bad_cases[] = {
    /* unknown keys, at each level */
    { "muss:\n  probe_host: mus.cisco.com\n",
      "t.yaml:1:1: unknown key 'muss' at top level " TOP_KEYS },
    { "log_level: info\ndecryption_policies: []\n",
      "t.yaml:2:1: unknown key 'decryption_policies' at top level " TOP_KEYS },
    /* the mus section */
    { "mus:\n  probe: x\n",
      "t.yaml:2:3: unknown key 'probe' in mus (expected one of: remote_users, vpn_pools, "
      "probe_host, reconnect_interval, grace, client_id, control_socket, headends)" },
    { "mus:\n  remote_users: radius\n",
      "t.yaml:2:17: invalid remote_users 'radius' (use headend or ip_ranges)" },
    { "mus:\n  vpn_pools: [10.10.10.0/33]\n",
      "t.yaml:2:15: 'vpn_pools' entry '10.10.10.0/33' " CIDR_HINT },
    { "mus:\n  probe_host: \"mus cisco\"\n",
      "t.yaml:2:15: invalid probe_host 'mus cisco' (letters, digits, '-', '.' or '_')" },
    { "mus:\n  reconnect_interval: 0\n",
      "t.yaml:2:23: invalid duration '0' (use ms, s, m or h)" },
    { "mus:\n  grace: -1\n",
      "t.yaml:2:10: invalid duration '-1' (use ms, s, m or h)" },
    { "mus:\n  headends: [asa]\n",
      "t.yaml:2:14: 'headends' entries must be mappings, got a scalar" },
    { "mus:\n  headends:\n    - { addresses: [\"127.0.0.1:11999\"] }\n",
      "t.yaml:3:7: headend entry has no 'name'" },
    { "mus:\n  headends:\n    - { name: a, password_file: p, ca: c }\n",
      "t.yaml:3:7: headend 'a' has no 'addresses'" },
    { "mus:\n  headends:\n    - { name: a, addresses: [\"127.0.0.1:11999\"], ca: c }\n",
      "t.yaml:3:7: headend 'a' has no 'password_file'" },
    { "mus:\n  headends:\n    - { name: a, addresses: [\"127.0.0.1:11999\"], password_file: p }\n",
      "t.yaml:3:7: headend 'a' needs exactly one of 'ca' (a CA file) or 'pin_sha256'" },
    { "mus:\n  headends:\n    - { name: a, addresses: [\"host:11999\"], password_file: p, ca: c }\n",
      "t.yaml:3:30: invalid headend address 'host:11999' (use 192.0.2.1:11999 or [2001:db8::1]:11999)" },
    { "mus:\n  headends:\n    - { name: a, addresses: [\"127.0.0.1:1\"], password_file: p, pin_sha256: abc }\n",
      "t.yaml:3:76: invalid pin_sha256 'abc' (64 hex digits: SHA-256 of the certificate's public key)" },
    { "mus:\n  headends:\n    - { name: a, addresses: [\"127.0.0.1:1\"], password_file: p, ca: c }\n"
      "    - { name: a, addresses: [\"127.0.0.1:2\"], password_file: p, ca: c }\n",
      "t.yaml:4:7: duplicate headend name 'a'" },
    { "proxy:\n  tunnel_relay: zerocopy\n",
      "t.yaml:2:17: invalid tunnel_relay 'zerocopy' (use auto, splice or copy)" },
    { "proxy:\n  listn: [\"127.0.0.1:3128\"]\n",
      "t.yaml:2:3: unknown key 'listn' in proxy " PROXY_KEYS },
    { "proxy:\n  timeouts:\n    heder: 1s\n",
      "t.yaml:3:5: unknown key 'heder' in proxy.timeouts (expected one of: header, idle, "
      "connect, response, tunnel_idle, shutdown, dns)" },
    { "proxy:\n  listen:\n    - { address: \"127.0.0.1:3128\", mod: explicit }\n",
      "t.yaml:3:36: unknown key 'mod' in a proxy.listen entry (expected one of: address, mode, tproxy, spoof_client_address)" },
    { "Proxy: {}\n", "t.yaml:1:1: unknown key 'Proxy' at top level " TOP_KEYS },
    { "? [a, b]\n: 1\n", "t.yaml:1:3: keys at top level must be scalars, got a list" },
    /* wrong node types */
    { "proxy:\n  clients: 10.0.0.0/8\n", "t.yaml:2:12: 'clients' must be a list, got a scalar" },
    { "proxy:\n  clients:\n",
      "t.yaml:2:11: 'clients' must be a list, got an empty value (write [] for an empty list)" },
    { "proxy:\n  workers: [1]\n", "t.yaml:2:12: 'workers' must be a scalar, got a list" },
    { "proxy:\n  connect_ports: { a: 1 }\n",
      "t.yaml:2:18: 'connect_ports' must be a list, got a mapping" },
    { "proxy:\n  connect_ports: [[443]]\n",
      "t.yaml:2:19: 'connect_ports' entry must be a scalar, got a list" },
    { "proxy:\n  clients: [{ a: 1 }]\n",
      "t.yaml:2:13: 'clients' entry must be a scalar, got a mapping" },
    { "proxy: yes\n", "t.yaml:1:8: 'proxy' must be a mapping, got a scalar" },
    { "proxy:\n  timeouts: [1s]\n", "t.yaml:2:13: 'timeouts' must be a mapping, got a list" },
    { "- proxy\n", "t.yaml:1:1: the top level must be a mapping, got a list" },
    { "just a string\n", "t.yaml:1:1: the top level must be a mapping, got a scalar" },
    { "log_level: [info]\n", "t.yaml:1:12: 'log_level' must be a scalar, got a list" },
    { "proxy:\n  listen: [[\"127.0.0.1:3128\"]]\n",
      "t.yaml:2:12: 'listen' entries must be an address or a mapping, got a list" },
    { "proxy:\n  listen:\n    - address: [\"127.0.0.1:3128\"]\n",
      "t.yaml:3:16: listen 'address' must be a scalar, got a list" },
    /* durations */
    { "proxy:\n  timeouts: { header: 10x }\n",
      "t.yaml:2:23: invalid duration '10x' (use ms, s, m or h)" },
    { "proxy:\n  timeouts:\n    idle: 0s\n",
      "t.yaml:3:11: invalid duration '0s' (use ms, s, m or h)" },
    { "proxy:\n  timeouts:\n    connect: -5s\n",
      "t.yaml:3:14: invalid duration '-5s' (use ms, s, m or h)" },
    { "proxy:\n  timeouts:\n    dns: 25d\n",
      "t.yaml:3:10: invalid duration '25d' (use ms, s, m or h)" },
    { "proxy:\n  timeouts:\n    shutdown: 600h\n",
      "t.yaml:3:15: invalid duration '600h' (use ms, s, m or h)" },
    { "proxy:\n  timeouts:\n    response:\n",
      "t.yaml:3:14: invalid duration '' (use ms, s, m or h)" },
    /* ports */
    { "proxy:\n  connect_ports: [443, 70000]\n",
      "t.yaml:2:24: 'connect_ports' entry 70000 is not a port (1-65535)" },
    { "proxy:\n  connect_ports:\n    - 0\n",
      "t.yaml:3:7: 'connect_ports' entry 0 is not a port (1-65535)" },
    { "proxy:\n  connect_ports: [https]\n",
      "t.yaml:2:19: 'connect_ports' entry https is not a port (1-65535)" },
    { "proxy:\n  connect_ports: [-443]\n",
      "t.yaml:2:19: 'connect_ports' entry -443 is not a port (1-65535)" },
    /* prefixes */
    { "proxy:\n  clients:\n    - 10.0.0.0/33\n",
      "t.yaml:3:7: 'clients' entry '10.0.0.0/33' " CIDR_HINT },
    { "proxy:\n  deny_destinations: [metadata.google.internal]\n",
      "t.yaml:2:23: 'deny_destinations' entry 'metadata.google.internal' " CIDR_HINT },
    { "proxy:\n  clients: [\"fc00::/129\"]\n",
      "t.yaml:2:13: 'clients' entry 'fc00::/129' " CIDR_HINT },
    /* listen */
    { "proxy:\n  listen: [\"localhost:3128\"]\n",
      "t.yaml:2:12: invalid listen address 'localhost:3128' " LISTEN_HINT },
    { "proxy:\n  listen:\n    - address: 127.0.0.1\n",
      "t.yaml:3:16: invalid listen address '127.0.0.1' " LISTEN_HINT },
    { "proxy:\n  listen:\n    - \"::1:3128\"\n",
      "t.yaml:3:7: invalid listen address '::1:3128' " LISTEN_HINT },
    { "proxy:\n  listen:\n    - 127.0.0.1:0\n",
      "t.yaml:3:7: invalid listen address '127.0.0.1:0' " LISTEN_HINT },
    { "proxy:\n  listen:\n    - { address: \"127.0.0.1:3128\", mode: reverse }\n",
      "t.yaml:3:42: invalid listen mode 'reverse' (use explicit, transparent, pac or metrics)" },
    { "proxy:\n  listen:\n    - mode: transparent\n",
      "t.yaml:3:7: listen entry has no 'address'" },
    { "proxy:\n  listen: []\n", "t.yaml:2:11: 'listen' must have at least one address" },
    { "proxy:\n  listen:\n    - { address: 127.0.0.1:3129, tproxy: true }\n",
      "t.yaml:3:7: tproxy: true needs mode: transparent" },
    { "proxy:\n  listen:\n    - { address: 127.0.0.1:3129, mode: transparent, spoof_client_address: true }\n",
      "t.yaml:3:7: spoof_client_address: true needs tproxy: true" },
    { "proxy:\n  listen:\n    - { address: 127.0.0.1:3129, mode: transparent, tproxy: yes }\n",
      "t.yaml:3:61: invalid tproxy 'yes' (use true or false)" },
    /* pac */
    { "pac:\n  proxy: proxy.example\n", "t.yaml:2:10: invalid proxy 'proxy.example' (use host:port)" },
    { "pac:\n  remote_proxy: \"a b:1\"\n", "t.yaml:2:17: invalid remote_proxy 'a b:1' (use host:port)" },
    { "pac:\n  direct: [\"not a name\"]\n",
      "t.yaml:2:12: 'direct' entry 'not a name' is neither a domain name nor an address prefix" },
    { "proxy:\n  listen:\n    - { address: \"127.0.0.1:3128\", mode: wpad }\n",
      "t.yaml:3:42: invalid listen mode 'wpad' (use explicit, transparent, pac or metrics)" },
    { "proxy:\n  listen:\n    - { address: \"0.0.0.0:9129\", mode: metrics }\n",
      "t.yaml:3:7: mode: metrics listens on a loopback address only (remote scrapers use the "
      "admin UI's authenticated /metrics)" },
    /* store */
    { "store:\n  queue: 0\n", "t.yaml:2:10: invalid queue '0' (use 1-4194304)" },
    { "store:\n  retain_days: -1\n", "t.yaml:2:16: invalid retain_days '-1' (use 0-36500)" },
    { "store:\n  keep_query: 1\n", "t.yaml:2:15: invalid keep_query '1' (use true or false)" },
    { "store:\n  paths: x\n",
      "t.yaml:2:3: unknown key 'paths' in store (expected one of: path, queue, retain_days, retain_mb, keep_query, backend, node, postgresql)" },
    { "store:\n  backend: postgresql\n",
      "t.yaml:2:12: store: backend: postgresql needs postgresql: conninfo (the database; its "
      "password goes in password_file)" },
    { "store:\n  backend: mysql\n",
      "t.yaml:2:12: invalid backend 'mysql' (use sqlite or postgresql)" },
    { "store:\n  postgresql:\n    conninfo: \"host=db user=mp password=s3cret\"\n",
      "t.yaml:3:15: 'conninfo' must not hold a password: put it in 'password_file' (libpq's "
      "passfile format, mode 0600)" },
    { "store:\n  postgresql:\n    conninfo: \"dbname = mp  password = 'a b'\"\n",
      "t.yaml:3:15: 'conninfo' must not hold a password: put it in 'password_file' (libpq's "
      "passfile format, mode 0600)" },
    { "store:\n  postgresql:\n    conninfo: postgresql://mp:s3cret@db/mp\n",
      "t.yaml:3:15: 'conninfo' must not hold a password: put it in 'password_file' (libpq's "
      "passfile format, mode 0600)" },
    { "store:\n  postgresql:\n    conninfo: postgresql://mp@db/mp?sslmode=require&password=x\n",
      "t.yaml:3:15: 'conninfo' must not hold a password: put it in 'password_file' (libpq's "
      "passfile format, mode 0600)" },
    /* admin */
    { "admin:\n  listen: 0.0.0.0:8080\n",
      "t.yaml:2:11: admin listen address '0.0.0.0:8080' is not a loopback address: the admin UI "
      "would be reachable from other hosts (set allow_remote: true to allow it)" },
    { "admin: { allow_remote: false, listen: \"[2001:db8::1]:80\" }\n",
      "t.yaml:1:39: admin listen address '[2001:db8::1]:80' is not a loopback address: the admin UI "
      "would be reachable from other hosts (set allow_remote: true to allow it)" },
    { "admin:\n  listen: localhost:8080\n",
      "t.yaml:2:11: invalid listen address 'localhost:8080' (use 127.0.0.1:port or [::1]:port, numeric)" },
    { "admin:\n  listen: 127.0.0.1\n",
      "t.yaml:2:11: invalid listen address '127.0.0.1' (use 127.0.0.1:port or [::1]:port, numeric)" },
    { "admin:\n  enabled: yes\n", "t.yaml:2:12: invalid enabled 'yes' (use true or false)" },
    { "admin:\n  allow_remote: 1\n", "t.yaml:2:17: invalid allow_remote '1' (use true or false)" },
    { "admin:\n  password: hunter2\n",
      "t.yaml:2:3: unknown key 'password' in admin (expected one of: enabled, listen, password_file, "
      "allow_remote, tls_cert, tls_key, session_idle, session_max)" },
    { "admin:\n  tls_cert: /etc/hostname\n",
      "t.yaml:2:13: admin tls_cert is set without tls_key: HTTPS needs both (or neither)" },
    { "admin:\n  listen: 127.0.0.1:8443\n  tls_key: /etc/hostname\n",
      "t.yaml:3:12: admin tls_key is set without tls_cert: HTTPS needs both (or neither)" },
    { "admin:\n  tls_cert: /nonexistent/admin.pem\n  tls_key: /etc/hostname\n",
      "t.yaml:2:13: admin tls_cert '/nonexistent/admin.pem': No such file or directory" },
    { "admin:\n  tls_cert: /etc/hostname\n  tls_key: /tmp\n",
      "t.yaml:3:12: admin tls_key '/tmp' is not a regular file" },
    { "admin:\n  session_idle: 500ms\n", "t.yaml:2:17: 'session_idle' must be between 1s and 24h" },
    { "admin:\n  session_idle: 25h\n", "t.yaml:2:17: 'session_idle' must be between 1s and 24h" },
    { "admin:\n  session_max: 169h\n", "t.yaml:2:16: 'session_max' must be between 1s and 168h" },
    { "admin:\n  session_idle: soon\n", "t.yaml:2:17: invalid duration 'soon' (use ms, s, m or h)" },
    { "admin:\n  session_max: 1h\n  session_idle: 2h\n",
      "t.yaml:3:17: admin session_idle is longer than session_max: a login would end at "
      "session_max anyway" },
    { "admin: [127.0.0.1:8080]\n", "t.yaml:1:8: 'admin' must be a mapping, got a list" },
    { "admin:\n  password_file: \"a\\tb\"\n", "t.yaml:2:18: 'password_file' contains a control character" },
    /* proxy.transparent */
    { "proxy:\n  transparent: { host_mismatch: strict }\n",
      "t.yaml:2:33: invalid host_mismatch 'strict' (use log or refuse)" },
    { "proxy:\n  transparent: { no_sni: maybe }\n",
      "t.yaml:2:26: invalid no_sni 'maybe' (use allow or block)" },
    { "proxy:\n  transparent: { bypass: [\"exa mple.com\"] }\n",
      "t.yaml:2:27: 'bypass' entry 'exa mple.com' is neither a domain name nor an address prefix" },
    { "proxy:\n  transparent: { bypass: [10.0.0.0/33] }\n",
      "t.yaml:2:27: 'bypass' entry '10.0.0.0/33' is not an address prefix (e.g. 10.0.0.0/8)" },
    { "proxy:\n  transparent: { bypass: [a..b] }\n",
      "t.yaml:2:27: 'bypass' entry 'a..b' is neither a domain name nor an address prefix" },
    { "proxy:\n  transparent: { peek_timeout: soon }\n",
      "t.yaml:2:32: invalid duration 'soon' (use ms, s, m or h)" },
    { "proxy:\n  listen:\n    - 127.0.0.1:3128\n"
      "    - { address: 127.0.0.1:3128, mode: transparent }\n",
      "t.yaml:4:18: duplicate listen address '127.0.0.1:3128'" },
    { "proxy:\n  listen: [\"[::1]:80\", \"[0:0::1]:80\"]\n",
      "t.yaml:2:24: duplicate listen address '[0:0::1]:80'" },
    { "proxy:\n  listen:\n    - { address: 127.0.0.1:1, address: 127.0.0.1:2 }\n",
      "t.yaml:3:31: duplicate key 'address' in a proxy.listen entry" },
    /* other scalars */
    { "proxy:\n  workers: 0\n", "t.yaml:2:12: invalid workers '0' (use auto or 1-256)" },
    { "proxy:\n  workers: 257\n", "t.yaml:2:12: invalid workers '257' (use auto or 1-256)" },
    { "proxy:\n  workers: Auto\n", "t.yaml:2:12: invalid workers 'Auto' (use auto or 1-256)" },
    { "proxy:\n  max_connections: 1000001\n",
      "t.yaml:2:20: invalid max_connections '1000001' (use 1-1000000)" },
    { "proxy:\n  max_connections: 99999999999999999999999\n",
      "t.yaml:2:20: invalid max_connections '99999999999999999999999' (use 1-1000000)" },
    { "proxy:\n  max_connections: 1e4\n",
      "t.yaml:2:20: invalid max_connections '1e4' (use 1-1000000)" },
    { "log_level: verbose\n",
      "t.yaml:1:12: invalid log_level 'verbose' (use error, warn, info or debug)" },
    { "proxy:\n  visible_hostname: \"a\\r\\nX-Evil: 1\"\n",
      "t.yaml:2:21: invalid visible_hostname 'a??X-Evil: 1' (1-255 letters, digits, '-', '.' or '_')" },
    { "proxy:\n  visible_hostname: \"\"\n",
      "t.yaml:2:21: invalid visible_hostname '' (1-255 letters, digits, '-', '.' or '_')" },
    { "proxy:\n  access_log:\n", "t.yaml:2:14: 'access_log' needs a value (a path, or off)" },
    { "proxy:\n  access_log: \"var/a\\nb.log\"\n",
      "t.yaml:2:15: 'access_log' contains a control character" },
    { "log_level: \"in\\0fo\"\n", "t.yaml:1:12: 'log_level' contains a NUL character" },
    /* duplicate keys */
    { "proxy:\n  workers: 2\n  workers: 4\n", "t.yaml:3:3: duplicate key 'workers' in proxy" },
    { "log_level: info\nlog_level: debug\n", "t.yaml:2:1: duplicate key 'log_level' at top level" },
    { "proxy: {}\nproxy: {}\n", "t.yaml:2:1: duplicate key 'proxy' at top level" },
    { "proxy:\n  timeouts: { dns: 1s, dns: 2s }\n",
      "t.yaml:2:24: duplicate key 'dns' in proxy.timeouts" },
    /* anchors, aliases, tags, documents */
    { "log_level: *lvl\n", "t.yaml:1:12: aliases are not allowed ('*lvl')" },
    { "proxy: &p\n  workers: 2\n", "t.yaml:1:8: anchors are not allowed ('&p')" },
    { "proxy:\n  clients: &a [\"10.0.0.0/8\"]\n  deny_destinations: [*a, *a]\n",
      "t.yaml:2:12: anchors are not allowed ('&a')" },
    { "log_level: !!str info\n", "t.yaml:1:12: tags are not allowed ('tag:yaml.org,2002:str')" },
    { "log_level: !custom info\n", "t.yaml:1:12: tags are not allowed ('!custom')" },
    { "log_level: info\n---\nlog_level: warn\n", "t.yaml:2:1: only one YAML document is allowed" },
    /* YAML syntax: libyaml's problem, at libyaml's mark */
    { "proxy: {workers: 2\n",
      "t.yaml:2:1: did not find expected ',' or '}' (while parsing a flow mapping at line 1 column 8)" },
    { "proxy:\n\tworkers: 2\n",
      "t.yaml:2:1: found character that cannot start any token "
      "(while scanning for the next token at line 2 column 1)" },
    { "proxy:\n  clients: [10.0.0.0/8\n",
      "t.yaml:3:1: did not find expected ',' or ']' (while parsing a flow sequence at line 2 column 12)" },
    { "log_level: \"info\n",
      "t.yaml:2:1: found unexpected end of stream (while scanning a quoted scalar at line 1 column 12)" },
    { "proxy:\n  workers: 2\n bad\n",
      "t.yaml:3:2: did not find expected key (while parsing a block mapping at line 1 column 1)" },
    { "log_level: info\n\xff\n", "t.yaml:2:1: invalid leading UTF-8 octet (#FF)" },
    { "log_level: x\x01y\n", "t.yaml:1:13: control characters are not allowed (#1)" },
    /* a long value is cut in the message */
    { "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk: 1\n",
      "t.yaml:1:1: unknown key 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...' "
      "at top level " TOP_KEYS },
    /* policies */
    { "identity_profiles: {}\n",
      "t.yaml:1:20: 'identity_profiles' must be a list, got a mapping" },
    { "identity_profiles:\n",
      "t.yaml:1:19: 'identity_profiles' must be a list, got an empty value (write [] for an empty list)" },
    { "identity_profiles: [remote]\n",
      "t.yaml:1:21: 'identity_profiles' entries must be mappings, got a scalar" },
    { "identity_profiles:\n  - location: remote\n",
      "t.yaml:2:5: identity profile entry has no 'name'" },
    { "identity_profiles:\n  - { name: a }\n  - { name: b }\n  - { name: a }\n",
      "t.yaml:4:13: duplicate identity profile name 'a'" },
    { "identity_profiles:\n  - name: \"a b\"\n",
      "t.yaml:2:11: invalid name 'a b' (letters, digits, '-', '.' or '_')" },
    { "identity_profiles:\n  - { name: a, location: vpn }\n",
      "t.yaml:2:26: invalid location 'vpn' (use remote, local or any)" },
    { "identity_profiles:\n  - { name: a, types: [user, robot] }\n",
      "t.yaml:2:30: invalid type 'robot' (use user, machine or device)" },
    { "identity_profiles:\n  - { name: a, types: [user, user] }\n",
      "t.yaml:2:30: duplicate 'types' entry 'user'" },
    { "identity_profiles:\n  - { name: a, types: user }\n",
      "t.yaml:2:23: 'types' must be a list, got a scalar" },
    { "identity_profiles:\n  - { name: a, subnets: [10.0.0.0/33] }\n",
      "t.yaml:2:26: 'subnets' entry '10.0.0.0/33' is not an address prefix (e.g. 10.0.0.0/8, fc00::/7)" },
    { "identity_profiles:\n  - { name: a, ports: [0] }\n",
      "t.yaml:2:24: 'ports' entry 0 is not a port (1-65535)" },
    { "identity_profiles:\n  - { name: a, mode: reverse }\n",
      "t.yaml:2:22: invalid mode 'reverse' (use explicit, transparent or any)" },
    { "identity_profiles:\n  - { name: a, user_agent: [x] }\n",
      "t.yaml:2:28: 'user_agent' must be a scalar, got a list" },
    { "identity_profiles:\n  - { name: a, users: [\"a,b\"] }\n",
      "t.yaml:2:24: 'users' entry 'a,b' is not a valid user or group name (1-255 bytes, no ',', control characters or surrounding spaces)" },
    { "identity_profiles:\n  - { name: a, groups: [\" eng\"] }\n",
      "t.yaml:2:25: 'groups' entry ' eng' is not a valid user or group name (1-255 bytes, no ',', control characters or surrounding spaces)" },
    { "identity_profiles:\n  - { name: a, users: [alice, alice] }\n",
      "t.yaml:2:31: duplicate 'users' entry 'alice'" },
    { "identity_profiles:\n  - { name: a, auth: ntlm }\n",
      "t.yaml:2:22: invalid auth 'ntlm' (use none or basic)" },
    { "identity_profiles:\n  - { name: a, refuse_unidentified: yes }\n",
      "t.yaml:2:37: invalid refuse_unidentified 'yes' (use true or false)" },
    { "identity_profiles:\n  - { name: a, colour: red }\n",
      "t.yaml:2:16: unknown key 'colour' in an identity_profiles entry (expected one of: name, location, types, subnets, ports, mode, user_agent, users, groups, auth, refuse_unidentified)" },
    { "identity_profiles:\n  - name: a\n    auth: basic\n",
      "t.yaml:3:5: auth: basic needs authentication.password_file" },
    { "identity_profiles:\n  - { name: a, auth: basic, mode: transparent }\nauthentication: { password_file: p }\n",
      "t.yaml:2:16: auth: basic cannot go with mode: transparent (such clients cannot be asked for credentials)" },
    { "identity_profiles:\n  - { name: a, name: b }\n",
      "t.yaml:2:16: duplicate key 'name' in an identity_profiles entry" },
    { "access_policies:\n  - { profiles: [a] }\n",
      "t.yaml:2:5: access policy entry has no 'name'" },
    { "access_policies:\n  - { name: p, profiles: [nobody] }\n",
      "t.yaml:2:27: unknown identity profile 'nobody'" },
    { "identity_profiles: [{ name: a }]\naccess_policies:\n  - { name: p, profiles: [a] }\n  - { name: q, profiles: [a] }\n",
      "t.yaml:4:27: identity profile 'a' is already in policy 'p' (the first match wins)" },
    { "identity_profiles: [{ name: a }]\naccess_policies:\n  - { name: p, profiles: [a, a] }\n",
      "t.yaml:3:30: duplicate 'profiles' entry 'a'" },
    { "access_policies:\n  - { name: default }\n  - { name: late, profiles: [a] }\n",
      "t.yaml:3:13: policy 'late' comes after the default policy 'default'" },
    { "access_policies:\n  - { name: d1 }\n  - { name: d2, profiles: [] }\n",
      "t.yaml:3:13: policy 'd2' comes after the default policy 'd1'" },
    { "access_policies:\n  - { name: p }\n  - { name: p }\n",
      "t.yaml:3:13: duplicate access policy name 'p'" },
    { "access_policies:\n  - name: p\n    categories: { adult: deny }\n",
      "t.yaml:3:26: invalid action 'deny' (use allow, block or monitor)" },
    { "access_policies:\n  - name: p\n    categories: { adult: { action: block, time: night } }\n",
      "t.yaml:3:49: unknown time range 'night'" },
    { "access_policies:\n  - name: p\n    categories: { adult: { time: night } }\n",
      "t.yaml:3:26: category 'adult' needs an 'action'" },
    { "access_policies:\n  - name: p\n    categories: { adult: [block] }\n",
      "t.yaml:3:26: category 'adult' needs an action (use allow, block or monitor) or a mapping { action, time }, got a list" },
    { "access_policies:\n  - name: p\n    categories: { adult: }\n",
      "t.yaml:3:26: category 'adult' needs an action (use allow, block or monitor) or a mapping { action, time }, got an empty value" },
    { "access_policies:\n  - name: p\n    categories: { \"ad ult\": block }\n",
      "t.yaml:3:19: invalid category name 'ad ult' (1-63 letters, digits, '-', '.' or '_')" },
    { "access_policies:\n  - name: p\n    categories: { adult: block, adult: allow }\n",
      "t.yaml:3:33: duplicate category 'adult' in 'categories'" },
    { "access_policies:\n  - name: p\n    categories: [adult]\n",
      "t.yaml:3:17: 'categories' must be a mapping of category: action, got a list" },
    { "access_policies:\n  - name: p\n    categories: { adult: { action: block, when: x } }\n",
      "t.yaml:3:43: unknown key 'when' in a category rule (expected one of: action, time)" },
    { "access_policies:\n  - { name: p, default: deny }\n",
      "t.yaml:2:25: invalid default 'deny' (use allow, block or monitor)" },
    { "access_policies:\n  - { name: p, connect_ports: [] }\n",
      "t.yaml:2:31: 'connect_ports' must not be empty (omit it to use proxy.connect_ports)" },
    { "access_policies:\n  - { name: p, connect_ports: [443, 65536] }\n",
      "t.yaml:2:37: 'connect_ports' entry 65536 is not a port (1-65535)" },
    { "access_policies:\n  - { name: p, methods: [get] }\n",
      "t.yaml:2:26: 'methods' entry 'get' is not a method (1-32 uppercase letters, e.g. GET)" },
    { "access_policies:\n  - { name: p, methods: [] }\n",
      "t.yaml:2:25: 'methods' must not be empty (omit it to allow any method)" },
    { "access_policies:\n  - { name: p, methods: [GET, GET] }\n",
      "t.yaml:2:31: duplicate 'methods' entry 'GET'" },
    { "access_policies:\n  - { name: p, method: [GET] }\n",
      "t.yaml:2:16: unknown key 'method' in an access_policies entry (expected one of: name, profiles, categories, default, connect_ports, methods)" },
    { "time_ranges:\n  work: { days: [mon], hours: \"17:00-09:00\" }\n",
      "t.yaml:2:31: hours '17:00-09:00' must start before they end (a range cannot cross midnight)" },
    { "time_ranges:\n  work: { days: [mon], hours: \"9:00-17:00\" }\n",
      "t.yaml:2:31: invalid hours '9:00-17:00' (use HH:MM-HH:MM, e.g. 09:00-17:00; 24:00 ends the day)" },
    { "time_ranges:\n  work: { days: [mon], hours: \"09:00-24:01\" }\n",
      "t.yaml:2:31: invalid hours '09:00-24:01' (use HH:MM-HH:MM, e.g. 09:00-17:00; 24:00 ends the day)" },
    { "time_ranges:\n  work: { days: [monday], hours: \"09:00-17:00\" }\n",
      "t.yaml:2:18: invalid day 'monday' (use mon, tue, wed, thu, fri, sat or sun)" },
    { "time_ranges:\n  work: { days: [], hours: \"09:00-17:00\" }\n",
      "t.yaml:2:17: 'days' must not be empty" },
    { "time_ranges:\n  work: { days: [mon, mon], hours: \"09:00-17:00\" }\n",
      "t.yaml:2:23: duplicate 'days' entry 'mon'" },
    { "time_ranges:\n  work: { hours: \"09:00-17:00\" }\n",
      "t.yaml:2:9: time range 'work' has no 'days'" },
    { "time_ranges:\n  work: { days: [mon] }\n",
      "t.yaml:2:9: time range 'work' has no 'hours'" },
    { "time_ranges:\n  work: { days: [mon], hours: \"09:00-10:00\" }\n  work: { days: [tue], hours: \"09:00-10:00\" }\n",
      "t.yaml:3:3: duplicate time range 'work'" },
    { "time_ranges:\n  work: \"09:00-17:00\"\n",
      "t.yaml:2:9: time range 'work' must be a mapping { days, hours }, got a scalar" },
    { "time_ranges: [work]\n",
      "t.yaml:1:14: 'time_ranges' must be a mapping of name: { days, hours }, got a list" },
    { "time_ranges:\n  \"w h\": { days: [mon], hours: \"09:00-10:00\" }\n",
      "t.yaml:2:3: invalid time range name 'w h' (1-63 letters, digits, '-', '.' or '_')" },
    { "custom_categories:\n  - { name: c }\n",
      "t.yaml:2:5: custom category 'c' has no domains, url_prefixes or regexes" },
    { "custom_categories:\n  - { domains: [a.example] }\n",
      "t.yaml:2:5: custom category entry has no 'name'" },
    { "custom_categories:\n  - { name: c, domains: [a.example] }\n  - { name: c, regexes: [x] }\n",
      "t.yaml:3:13: duplicate custom category name 'c'" },
    { "custom_categories:\n  - { name: c, domains: [\"a..example\"] }\n",
      "t.yaml:2:26: 'domains' entry 'a..example' is not a domain name (e.g. example.com; it matches its subdomains too)" },
    { "custom_categories:\n  - { name: c, domains: [\"*.example\"] }\n",
      "t.yaml:2:26: 'domains' entry '*.example' is not a domain name (e.g. example.com; it matches its subdomains too)" },
    { "custom_categories:\n  - { name: c, url_prefixes: [\"ftp://x/\"] }\n",
      "t.yaml:2:31: 'url_prefixes' entry 'ftp://x/' is not a URL prefix (http://host/path or https://host/path, no spaces, at most 2048 bytes)" },
    { "custom_categories:\n  - { name: c, url_prefixes: [\"http://\"] }\n",
      "t.yaml:2:31: 'url_prefixes' entry 'http://' is not a URL prefix (http://host/path or https://host/path, no spaces, at most 2048 bytes)" },
    { "custom_categories:\n  - { name: c, regexes: [\"\"] }\n",
      "t.yaml:2:26: 'regexes' entry '' is not a valid regex (1-1023 bytes, no control characters)" },
    { "custom_categories:\n  - { name: c, domains: [], url_prefixes: [], regexes: [] }\n",
      "t.yaml:2:5: custom category 'c' has no domains, url_prefixes or regexes" },
    { "custom_categories:\n  - { name: adult, domains: [a.example] }\ncategories:\n  names: { adult: [adult] }\n",
      "t.yaml:4:12: 'adult' is both a custom category and a category name in categories.names" },
    { "categories:\n  names: { adult: [adult] }\ncustom_categories:\n  - { name: adult, domains: [a.example] }\n",
      "t.yaml:4:13: 'adult' is both a custom category and a category name in categories.names" },
    { "categories:\n  names: { adult: [] }\n",
      "t.yaml:2:19: category 'adult' must name at least one list category" },
    { "categories:\n  names: { adult: [adult], adult: [porn] }\n",
      "t.yaml:2:28: duplicate category name 'adult' in 'names'" },
    { "categories:\n  names: { adult: [adult, \"x y\"] }\n",
      "t.yaml:2:27: 'adult' entry 'x y' is not a valid name (1-63 letters, digits, '-', '.' or '_')" },
    { "categories:\n  names: [adult]\n",
      "t.yaml:2:10: 'names' must be a mapping of name: [list categories], got a list" },
    { "categories:\n  database:\n",
      "t.yaml:2:12: 'database' needs a value" },
    { "categories:\n  db: x\n",
      "t.yaml:2:3: unknown key 'db' in categories (expected one of: database, names)" },
    { "authentication:\n  realm: 'a\"b'\n",
      "t.yaml:2:10: invalid realm 'a\"b' (1-127 printable ASCII characters, no '\"' or '\\')" },
    { "authentication:\n  realm: \"\"\n",
      "t.yaml:2:10: invalid realm '' (1-127 printable ASCII characters, no '\"' or '\\')" },
    { "authentication:\n  surrogate_ttl: 0\n",
      "t.yaml:2:18: invalid duration '0' (use ms, s, m or h)" },
    { "authentication:\n  password_file:\n",
      "t.yaml:2:17: 'password_file' needs a value" },
    { "authentication:\n  user: x\n",
      "t.yaml:2:3: unknown key 'user' in authentication (expected one of: realm, password_file, surrogate_ttl)" },
    { "extended_log:\n",
      "t.yaml:1:14: 'extended_log' needs a value" },
    { "extended_log: [x]\n",
      "t.yaml:1:15: 'extended_log' must be a scalar, got a list" },
};

Test(config, broken_files_exact_messages)
{
    for (size_t i = 0; i < N_ELEMS(bad_cases); i++) {
        char err[CONFIG_ERR_LEN] = "";
        config_t *cfg = load_str(bad_cases[i].yaml, err);
        cr_expect_null(cfg, "case %zu loaded: %s", i, bad_cases[i].yaml);
        cr_expect_str_eq(err, bad_cases[i].message, "case %zu:\n%s", i, bad_cases[i].yaml);
        config_free(cfg);
    }
}

/* Builds "proxy:\n  KEY:\n" and n block entries printed with fmt(i). */
static char *
long_list(const char *key, size_t n, const char *fmt)
{
    size_t cap = 64 + n * 64, off;
    char *s = malloc(cap);

    cr_assert_not_null(s);
    off = (size_t)snprintf(s, cap, "proxy:\n  %s:\n", key);
    for (size_t i = 0; i < n; i++) {
        off += (size_t)snprintf(s + off, cap - off, "    - ");
        off += (size_t)snprintf(s + off, cap - off, fmt, (unsigned)(i / 250),
                                (unsigned)(i % 250 + 1));
        off += (size_t)snprintf(s + off, cap - off, "\n");
    }
    return s;
}

Test(config, list_limits)
{
    static const struct {
        const char *key, *fmt;
        size_t max;
        const char *message;
    } cases[] = {
        { "clients", "10.%u.%u.0/24", CONFIG_MAX_CIDRS,
          "t.yaml:259:7: too many entries in 'clients' (at most 256)" },
        { "deny_destinations", "10.%u.%u.0/24", CONFIG_MAX_CIDRS,
          "t.yaml:259:7: too many entries in 'deny_destinations' (at most 256)" },
        { "connect_ports", "1%u%03u", CONFIG_MAX_PORTS,
          "t.yaml:67:7: too many entries in 'connect_ports' (at most 64)" },
        { "listen", "\"127.0.%u.%u:3128\"", CONFIG_MAX_LISTEN,
          "t.yaml:35:7: too many entries in 'listen' (at most 32)" },
    };
    char err[CONFIG_ERR_LEN];

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char *text = long_list(cases[i].key, cases[i].max, cases[i].fmt);
        config_t *cfg = load_str(text, err);
        cr_assert_not_null(cfg, "%s at its limit: %s", cases[i].key, err);
        config_free(cfg);
        free(text);

        text = long_list(cases[i].key, cases[i].max + 1, cases[i].fmt);
        cfg = load_str(text, err);
        cr_expect_null(cfg);
        cr_expect_str_eq(err, cases[i].message);
        config_free(cfg);
        free(text);
    }
}

Test(config, file_size_limit)
{
    char err[CONFIG_ERR_LEN];
    size_t len = CONFIG_MAX_FILE_BYTES + 1;
    char *big = malloc(len);
    config_t *cfg;

    cr_assert_not_null(big);
    memset(big, '#', len);           /* one huge comment: valid YAML */
    big[len - 1] = '\n';
    cfg = config_load_buffer("big.yaml", big, len, err, sizeof(err));
    cr_expect_null(cfg);
    cr_expect_str_eq(err, "big.yaml: file is larger than 4194304 bytes");

    cfg = config_load_buffer("big.yaml", big + 1, len - 1, err, sizeof(err));
    cr_expect_not_null(cfg, "%s", err);   /* exactly at the limit */
    config_free(cfg);

    char path[] = "/tmp/test-config-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, big, len), (ssize_t)len);
    close(fd);
    cfg = config_load(path, err, sizeof(err));
    cr_expect_null(cfg);
    char expected[CONFIG_ERR_LEN];
    snprintf(expected, sizeof(expected), "%s: file is larger than 4194304 bytes", path);
    cr_expect_str_eq(err, expected);
    unlink(path);
    free(big);
}

Test(config, load_errors_name_the_file)
{
    char err[CONFIG_ERR_LEN], expected[CONFIG_ERR_LEN];
    char path[] = "/tmp/test-config-XXXXXX";
    static const char text[] = "log_level: info\nproxy:\n  workers: many\n";
    config_t *cfg;
    int fd;

    cfg = config_load("/nonexistent/musproxy.yaml", err, sizeof(err));
    cr_expect_null(cfg);
    cr_expect_str_eq(err, "/nonexistent/musproxy.yaml: cannot open: No such file or directory");

    cfg = config_load("/tmp", err, sizeof(err));
    cr_expect_null(cfg);
    cr_expect_str_eq(err, "/tmp: cannot read: Is a directory");

    fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
    close(fd);
    cfg = config_load(path, err, sizeof(err));
    cr_expect_null(cfg);
    snprintf(expected, sizeof(expected), "%s:3:12: invalid workers 'many' (use auto or 1-256)", path);
    cr_expect_str_eq(err, expected);
    unlink(path);
}

/* A small or absent error buffer is never overrun. */
Test(config, error_buffer_truncation)
{
    char err[16];
    config_t *cfg;

    memset(err, 'x', sizeof(err));
    cfg = config_load_buffer("t.yaml", "proxy: 1\n", 9, err, 12);
    cr_expect_null(cfg);
    cr_expect_str_eq(err, "t.yaml:1:8:");
    cr_expect_eq(err[12], 'x');
    cfg = config_load_buffer("t.yaml", "proxy: 1\n", 9, NULL, 0);
    cr_expect_null(cfg);
    config_free(NULL);
}
