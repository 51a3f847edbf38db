#!/usr/bin/env bash
# Base images for the compose and swarm stacks where no image registry can be reached, made
# from Debian's packages: a Python base (debootstrap), Prometheus (Debian's `prometheus`)
# and, for the swarm stack's front door, HAProxy (Debian's `haproxy`).
#
#   deploy/local-images.sh
#   PYTHON_IMAGE=shardstack-python:bookworm PROMETHEUS_IMAGE=shardstack-prometheus:bookworm \
#       docker-compose up --build
#
# Needs root, docker, debootstrap and apt-get. Images that exist are kept if this version of
# the script made them (a label holds its hash); otherwise they are made again. Downloads
# made inside `docker build` go through this machine's TLS-intercepting proxy, so the base
# carries the host's CA bundle and points pip at it.
set -euo pipefail

PYTHON_IMAGE=${PYTHON_IMAGE:-shardstack-python:bookworm}
PROMETHEUS_IMAGE=${PROMETHEUS_IMAGE:-shardstack-prometheus:bookworm}
HAPROXY_IMAGE=${HAPROXY_IMAGE:-shardstack-haproxy:bookworm}
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

RECIPE_LABEL=io.shardstack.local-images
RECIPE=$(sha256sum "$0" | cut -c1-16)
# An image of this recipe, on top of the Python base as it is now.
have() {
    [ "$(docker image inspect -f "{{index .Config.Labels \"$RECIPE_LABEL\"}}" "$1" 2>/dev/null)" \
        = "$RECIPE${2:+-$2}" ]
}

if ! have "$PYTHON_IMAGE"; then
    echo "local-images: $PYTHON_IMAGE from Debian bookworm (debootstrap, about a minute) ..."
    if ! debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$work/root" >"$work/debootstrap.log" 2>&1; then
        tail -n 20 "$work/debootstrap.log" >&2
        exit 1
    fi
    cp "$CA_BUNDLE" "$work/root$CA_BUNDLE"
    rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*
    tar -C "$work/root" -c . | docker import \
        --change "ENV PIP_CERT=$CA_BUNDLE" \
        --change 'CMD ["python3"]' \
        --change "LABEL $RECIPE_LABEL=$RECIPE" \
        - "$PYTHON_IMAGE" >/dev/null
fi

base_id=$(docker image inspect -f '{{.Id}}' "$PYTHON_IMAGE" | cut -c8-19)
if ! have "$PROMETHEUS_IMAGE" "$base_id"; then
    echo "local-images: $PROMETHEUS_IMAGE from Debian's prometheus package ..."
    if ! (cd "$work" && apt-get download prometheus >/dev/null 2>&1); then
        apt-get update -qq
        (cd "$work" && apt-get download prometheus >/dev/null)
    fi
    dpkg-deb -x "$work"/prometheus_*.deb "$work/package"
    mkdir "$work/context"
    cp "$work/package/usr/bin/prometheus" "$work/context/prometheus"
    # Laid out as the upstream image is: binary in /bin, data in /prometheus, run as nobody.
    cat >"$work/context/Dockerfile" <<DOCKERFILE
FROM $PYTHON_IMAGE
LABEL $RECIPE_LABEL=$RECIPE-$base_id
COPY prometheus /bin/prometheus
RUN mkdir -p /prometheus /etc/prometheus && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
DOCKERFILE
    docker build --quiet -t "$PROMETHEUS_IMAGE" "$work/context" >/dev/null
fi

if ! have "$HAPROXY_IMAGE" "$base_id"; then
    echo "local-images: $HAPROXY_IMAGE from Debian's haproxy package ..."
    # The binary and the libraries the Python base lacks (Lua, OpenTracing's wrapper).
    packages=(haproxy liblua5.3-0 libopentracing-c-wrapper0 libopentracing1)
    mkdir "$work/haproxy"
    if ! (cd "$work/haproxy" && apt-get download "${packages[@]}" >/dev/null 2>&1); then
        apt-get update -qq
        (cd "$work/haproxy" && apt-get download "${packages[@]}" >/dev/null)
    fi
    mkdir -p "$work/haproxy-context/root/usr/local/sbin" "$work/haproxy-context/root/usr/local/lib"
    for deb in "$work"/haproxy/*.deb; do dpkg-deb -x "$deb" "$work/haproxy/tree"; done
    cp "$work/haproxy/tree/usr/sbin/haproxy" "$work/haproxy-context/root/usr/local/sbin/"
    cp -P "$work"/haproxy/tree/usr/lib/x86_64-linux-gnu/*.so* "$work/haproxy-context/root/usr/local/lib/"
    # Laid out as the upstream image is: configuration in /usr/local/etc/haproxy.
    cat >"$work/haproxy-context/Dockerfile" <<DOCKERFILE
FROM $PYTHON_IMAGE
LABEL $RECIPE_LABEL=$RECIPE-$base_id
COPY root/ /
RUN ldconfig && mkdir -p /usr/local/etc/haproxy && haproxy -v >/dev/null
USER nobody
EXPOSE 8000
CMD ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
DOCKERFILE
    docker build --quiet -t "$HAPROXY_IMAGE" "$work/haproxy-context" >/dev/null
fi

echo "local-images: PYTHON_IMAGE=$PYTHON_IMAGE PROMETHEUS_IMAGE=$PROMETHEUS_IMAGE HAPROXY_IMAGE=$HAPROXY_IMAGE"
