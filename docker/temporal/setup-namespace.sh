#!/bin/sh
# One-shot (service temporal-setup, image temporalio/admin-tools): create mediaflow's
# namespace and register mediaflow's search attributes (docs/ARCHITECTURE.md, "Temporal
# contract"; NAME:Type, as core/temporal.py declares them), then wait until
# the frontend accepts a visibility query on them, so the API never starts a workflow
# that Temporal would reject. Idempotent: safe on every `docker compose up`.
set -eu

ADDRESS="${TEMPORAL_ADDRESS:-temporal:7233}"
NAMESPACE="${NAMESPACE:-default}"
RETENTION="${NAMESPACE_RETENTION:-168h}"
# core/temporal.py SEARCH_ATTRIBUTES; tests/deploy checks the two lists agree.
SEARCH_ATTRIBUTES="MediaflowUserId:Keyword MediaflowJobType:Keyword MediaflowJobStatus:Keyword MediaflowPriority:Int"

# The frontend listens on IPv4 only (BIND_ON_IP=0.0.0.0): talk to its IPv4 address.
host="${ADDRESS%:*}"
port="${ADDRESS##*:}"
ip="$(getent ahosts "$host" | awk '$2 == "STREAM" && $1 ~ /^[0-9.]+$/ { print $1; exit }')"
if [ -n "$ip" ]; then
    ADDRESS="$ip:$port"
fi

# retry DESCRIPTION COMMAND...: the server and its namespace cache need a moment.
retry() {
    what="$1"
    shift
    attempt=0
    until "$@"; do
        attempt=$((attempt + 1))
        if [ "$attempt" -ge 60 ]; then
            echo "gave up: $what" >&2
            return 1
        fi
        sleep 2
    done
}

cluster_healthy() {
    temporal operator cluster health --address "$ADDRESS" > /dev/null 2>&1
}

namespace_exists() {
    temporal operator namespace describe --namespace "$NAMESPACE" --address "$ADDRESS" \
        > /dev/null 2>&1
}

ensure_namespace() {
    namespace_exists && return 0
    temporal operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION" \
        --address "$ADDRESS"
}

# ensure_search_attribute NAME TYPE
ensure_search_attribute() {
    if temporal operator search-attribute list --namespace "$NAMESPACE" --address "$ADDRESS" \
        2> /dev/null | grep -qw "$1"; then
        echo "search attribute $1 exists"
        return 0
    fi
    temporal operator search-attribute create --namespace "$NAMESPACE" \
        --name "$1" --type "$2" --address "$ADDRESS"
}

# The frontend caches namespace metadata: a query on the new attributes proves them usable.
attributes_queryable() {
    temporal workflow list --namespace "$NAMESPACE" --address "$ADDRESS" --limit 1 \
        --query "MediaflowUserId='probe' AND MediaflowJobType='probe' AND MediaflowJobStatus='probe' AND MediaflowPriority=3" \
        > /dev/null 2>&1
}

retry "Temporal at $ADDRESS is not healthy" cluster_healthy
retry "cannot create namespace $NAMESPACE" ensure_namespace
retry "namespace $NAMESPACE never became visible" namespace_exists
for attribute in $SEARCH_ATTRIBUTES; do
    name="${attribute%%:*}"
    retry "cannot register search attribute $name" ensure_search_attribute "$name" "${attribute##*:}"
done
retry "search attributes never became queryable" attributes_queryable
echo "namespace $NAMESPACE ready with search attributes: $SEARCH_ATTRIBUTES"
