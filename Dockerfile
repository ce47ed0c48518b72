# syntax=docker/dockerfile:1
#
# semsearch container image: a Rust build stage, then a small Debian runtime
# running as a non-root user. Used by docker-compose.yml; alone:
#   docker build -t semsearch .
#   docker run --rm -p 127.0.0.1:8080:8080 -e REDIS_HOST=host.docker.internal semsearch
#
# Not built or run on the machine this was written on (docker CLI, no engine);
# see docs/deploy.md.

FROM rust:1.95-bookworm AS builder
WORKDIR /src
# The image needs no debug info (local release builds keep it for profiling).
ENV CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=symbols
COPY . .
# Cache mounts keep the registry and target dir between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin semsearch \
 && install -D -m 0755 target/release/semsearch /out/semsearch

FROM debian:bookworm-slim AS runtime
# ca-certificates: for https embedding providers if a build trusts the system
# store; the binary itself needs only libc.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 semsearch \
 && useradd --system --uid 10001 --gid semsearch --no-create-home --shell /usr/sbin/nologin semsearch
COPY --from=builder /out/semsearch /usr/local/bin/semsearch
# For `semsearch seed /usr/share/semsearch/demo-corpus.jsonl.gz` (the demo
# command has the same corpus built in).
COPY data/demo-corpus.jsonl.gz /usr/share/semsearch/demo-corpus.jsonl.gz
USER 10001:10001
ENV SEMSEARCH_BIND=0.0.0.0:8080 \
    SEMSEARCH_LOG_FORMAT=json
EXPOSE 8080
# `semsearch healthcheck` GETs /readyz on SEMSEARCH_BIND: no curl in the image.
# start-period covers the first load of a large keyspace.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["semsearch", "healthcheck"]
ENTRYPOINT ["semsearch"]
CMD ["serve"]
