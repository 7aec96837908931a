# The image `runbench k8s render` deploys: runbench and every plugin, built in release.
#   docker build -t REGISTRY/runbench:TAG .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --workspace
FROM debian:bookworm-slim
# iproute2: the embassy plugin's TAP namespace (not used across machines, kept for local runs).
RUN apt-get update && apt-get install -y --no-install-recommends iproute2 \
    && rm -rf /var/lib/apt/lists/*
# Plugins are found next to the binary.
COPY --from=build /src/target/release/runbench /opt/runbench/runbench
COPY --from=build /src/target/release/librunbench_plugin_*.so /opt/runbench/
ENV PATH=/opt/runbench:$PATH
ENTRYPOINT ["runbench"]
