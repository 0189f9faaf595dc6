# syntax=docker/dockerfile:1.7
#
# The images of the three services, one target each; the build context is the repository root:
#
#   docker build -f docker/services.Dockerfile --target figalize \
#     --build-arg FIGACHECHNAYA_COMMIT="$(git rev-parse --short=12 HEAD)" \
#     -t figachechnaya/figalize:0.1.0 .
#
# (targets: figalize, history, imagizer). One builder stage compiles the three binaries in one
# cargo invocation, since they share nearly all their dependencies: building the three targets
# compiles the workspace once, and each image adds only its own binary.
#
# One file with a target per service rather than a build argument naming the service: Docker
# does not expand build arguments in the exec form of HEALTHCHECK and ENTRYPOINT, and the
# image has no shell for the shell form, so each image names its binary's path itself.
#
# The binaries are static (musl, built on Alpine) and run on distroless/static, which holds CA
# certificates, time zones and the nonroot user (65532) in about 2 MB: an image is about the
# size of its stripped binary. A glibc build would need distroless/cc (about 23 MB more, and
# zlib besides), which would put imagizer over 50 MB.
#
# Dependency caching: cargo-chef. `cargo chef prepare` reduces the workspace to its manifests
# and Cargo.lock (recipe.json); `cargo chef cook` builds every dependency from that alone, in
# a layer that is reused until a manifest or the lock file changes, so a change to the source
# recompiles only the workspace's own crates. Chosen over BuildKit cache mounts because the
# result is an ordinary layer, which a CI builder that starts empty can import with the rest of
# the build cache (--cache-from), while a cache mount stays on the machine that filled it; and
# over copying the manifests with hand-written dummy sources because chef follows the
# workspace's members, targets and build scripts by itself.

FROM rust:1.95.0-alpine3.23 AS chef
# C toolchain for the C code the crates bundle: librdkafka (a bash configure script and make),
# aws-lc, zlib, SQLite, mimalloc. Versions follow the pinned Alpine release (see .hadolint.yaml).
RUN apk add --no-cache bash g++ linux-headers make musl-dev perl \
 && cargo install cargo-chef --locked --version 0.1.77
WORKDIR /src
# zlib is compiled in from libz-sys's own copy instead of linked from the system, so that the
# binaries stay fully static.
ENV LIBZ_SYS_STATIC=1 CARGO_TERM_COLOR=never

# Only the workspace: a change elsewhere (the page, the deployment files) rebuilds nothing here.
FROM chef AS planner
COPY Cargo.toml Cargo.lock ./
COPY crates crates
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
SHELL ["/bin/bash", "-euo", "pipefail", "-c"]
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --workspace --recipe-path recipe.json
COPY Cargo.toml Cargo.lock ./
COPY crates crates
# Declared only now: the commit changes with every build and must not invalidate the cooked
# dependencies above. The build embeds it (crates/common/build.rs) in the build-info metric
# and the start-up log line.
ARG FIGACHECHNAYA_COMMIT=unknown
# Stripped (the symbols are a good part of a release binary), and refused if anything is
# linked dynamically: distroless/static has no shared libraries at all.
RUN cargo build --release --locked -p figalize -p history -p imagizer --bins \
 && mkdir -p /out \
 && for bin in figalize history imagizer; do \
      strip -o "/out/$bin" "target/release/$bin"; \
      if readelf -d "/out/$bin" | grep NEEDED >&2; then \
        echo "$bin is linked dynamically" >&2; exit 1; \
      fi; \
    done \
 && ls -l /out
# An empty folder for figalize's journal, copied into its image with the service's owner (the
# image has no shell to make it). A separate step, so the build above stays cached.
RUN mkdir /out/journal

# What the three images share.
FROM gcr.io/distroless/static-debian12:nonroot@sha256:b7bb25d9f7c31d2bdd1982feb4dafcaf137703c7075dbe2febb41c24212b946f AS runtime
# The workspace version (Cargo.toml); ci/check_deploy_config.py keeps the two equal.
ARG FIGACHECHNAYA_VERSION=0.1.0
ARG FIGACHECHNAYA_COMMIT=unknown
LABEL org.opencontainers.image.version="${FIGACHECHNAYA_VERSION}" \
      org.opencontainers.image.revision="${FIGACHECHNAYA_COMMIT}" \
      org.opencontainers.image.source="https://github.com/figachechnaya/figachechnaya" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.vendor="Figachechnaya"
# Listen on every interface (the default is loopback) and log JSON lines.
ENV HOST=0.0.0.0 LOG_FORMAT=json
USER 65532:65532

FROM runtime AS figalize
LABEL org.opencontainers.image.title="figalize" \
      org.opencontainers.image.description="Figachechnaya's figalize service: turns Russian words into their «офигаченные» forms"
COPY --from=builder /out/figalize /usr/local/bin/figalize
# The journal's folder, owned by the service's user: a volume mounted there starts as a copy of
# it (docker-compose's named volume), so figalize can write it. Without a volume the journal
# lives in the container's own layer, which survives a restart of the container, not its removal.
ENV JOURNAL_DIR=/var/lib/figalize/journal
COPY --from=builder --chown=65532:65532 /out/journal ${JOURNAL_DIR}
# FIGALIZE_API_PORT's default; the health check asks the port that variable names.
EXPOSE 8002
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/figalize", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/figalize"]

FROM runtime AS history
LABEL org.opencontainers.image.title="history" \
      org.opencontainers.image.description="Figachechnaya's history service: every phrase transformed, with a live stream and a counter"
COPY --from=builder /out/history /usr/local/bin/history
# HISTORY_API_PORT's default; the health check asks the port that variable names.
EXPOSE 8001
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/history", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/history"]

FROM runtime AS imagizer
LABEL org.opencontainers.image.title="imagizer" \
      org.opencontainers.image.description="Figachechnaya's imagizer service: renders every figalized phrase as a PNG and stores it"
COPY --from=builder /out/imagizer /usr/local/bin/imagizer
# IMAGIZER_API_PORT's default; the health check asks the port that variable names.
EXPOSE 8003
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/imagizer", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/imagizer"]
