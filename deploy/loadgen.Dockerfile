# The compose stack's load generator: wrk, from Debian's packages, aimed at the gateway
# over the stack's own network (docker-compose.yml, profile "loadgen").
ARG PYTHON_IMAGE=python:3.12-slim
FROM ${PYTHON_IMAGE}
# Unpinned: the base, and so its Debian release, is a build argument.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install --yes --no-install-recommends wrk \
    && rm -rf /var/lib/apt/lists/*
USER 65534:65534
ENTRYPOINT ["wrk"]
