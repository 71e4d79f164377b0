#!/bin/sh
# tools/strongswan-updown.sh: strongSwan's updown script for musproxy. charon
# runs it for every CHILD_SA that goes up or down, with PLUTO_VERB,
# PLUTO_UNIQUEID, PLUTO_PEER_ID, PLUTO_XAUTH_ID, PLUTO_PEER_SOURCEIP*, ... in
# the environment; `musctl notify` turns up-client/down-client (and -v6) into
# a connect/disconnect datagram for mus-headend's feed socket and ignores the
# other verbs. It always exits 0 and returns at once, whatever the headend's
# state: a headend that is down never blocks a tunnel.
#
# Install: copy to /usr/local/libexec/musproxy/strongswan-updown.sh (mode 0755)
# and name it in /etc/swanctl/swanctl.conf, in each remote-access child:
#
#   connections { rw { ... children { rw { updown = /usr/local/libexec/musproxy/strongswan-updown.sh } } } }
#
# Environment (set in charon's unit, or edit the defaults below):
#   MUSCTL          the musctl binary (default: musctl in PATH)
#   MUS_HEADEND_SOCKET  mus-headend's --socket (default /run/mus-headend.sock)
#   MUS_UPDOWN_CHAIN    a further updown script to run afterwards with the same
#                       arguments (e.g. /usr/lib/ipsec/_updown), or empty
# Run mus-headend with --swanctl-interval 60 as well, so that sessions whose
# down event was lost (charon restarted) are reconciled with `swanctl --list-sas`.
MUSCTL=${MUSCTL:-musctl}
"$MUSCTL" notify --socket "${MUS_HEADEND_SOCKET:-/run/mus-headend.sock}" || true
if [ -n "${MUS_UPDOWN_CHAIN:-}" ]; then
    exec "$MUS_UPDOWN_CHAIN" "$@"
fi
exit 0
