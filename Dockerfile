# The image `runbench k8s render` deploys: runbench and every plugin, built in release.
#   docker build -t REGISTRY/runbench:TAG .
# Without a registry (no rust or debian image to pull): binaries built beforehand, as the
# `binaries` build context, on a base image of your own (README, "Containers"):
#   podman build --build-context binaries=target/release --build-arg BASE=IMAGE -t TAG .
# The build stage is then skipped; the runtime stage (the last one) is the same either way:
# same base packages, paths and entrypoint.
ARG BASE=debian:bookworm-slim

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --workspace

# runbench and its plugins, at the root (as they lie in a `binaries` build context).
FROM scratch AS binaries
COPY --from=build /src/target/release/runbench /src/target/release/librunbench_plugin_*.so /

FROM ${BASE}
# iproute2: the embassy plugin's TAP namespace (not used across machines, kept for local runs).
RUN apt-get update && apt-get install -y --no-install-recommends iproute2 \
    && apt-get clean && rm -rf /var/lib/apt/lists/*
# Plugins are found next to the binary.
COPY --from=binaries runbench librunbench_plugin_*.so /opt/runbench/
ENV PATH=/opt/runbench:$PATH
ENTRYPOINT ["runbench"]
