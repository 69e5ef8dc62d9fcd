# syntax=docker/dockerfile:1
# MONTI server image: a release build on Debian, run as a non-root user from a slim runtime.
#
#   docker build -t monti-server .
#   docker run -p 8080:8080 -e MONTI_DATABASE_URL=postgres://... -e MONTI_AUTH_MODE=oidc \
#     -e MONTI_AUTH_ISSUER=... -e MONTI_AUTH_CLIENT_ID=... -e MONTI_AUTH_AUDIENCE=... \
#     -e MONTI_AUTH_BINDINGS='[{"group":"monti-admins","role":"admin"}]' monti-server
#
# The image listens on 0.0.0.0, where the server requires sign-in (auth mode oidc); without it
# the server refuses to start, by design.
#
# Configuration comes from MONTI_* environment variables, or from a TOML file mounted into the
# container and named by MONTI_CONFIG (see docs/DEPLOY.md).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Manifests first, so dependency builds are cached until a manifest changes.
COPY Cargo.toml Cargo.lock ./
COPY protocol/Cargo.toml protocol/Cargo.toml
COPY server/Cargo.toml server/Cargo.toml
COPY client/Cargo.toml client/Cargo.toml
RUN mkdir -p protocol/src server/src client/src \
    && echo 'fn main() {}' > server/src/main.rs \
    && echo 'fn main() {}' > client/src/main.rs \
    && touch protocol/src/lib.rs server/src/lib.rs client/src/lib.rs \
    && cargo build --release --locked -p monti-server \
    && rm -rf protocol/src server/src client/src
COPY protocol protocol
COPY server server
COPY client client
# Touch the sources so cargo rebuilds them over the placeholders.
RUN touch protocol/src/lib.rs server/src/lib.rs server/src/main.rs \
    && cargo build --release --locked -p monti-server \
    && cp target/release/monti-server /monti-server

FROM debian:bookworm-slim AS runtime
# ca-certificates is deliberately not pinned: Debian replaces old versions in its archive, and a
# stale pin would break the build exactly when a certificate update matters.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 monti \
    && useradd --system --uid 10001 --gid monti --home-dir /var/lib/monti --create-home monti
COPY --from=build /monti-server /usr/local/bin/monti-server
USER 10001:10001
WORKDIR /var/lib/monti
ENV MONTI_SERVER_LISTEN=0.0.0.0:8080 \
    MONTI_DATABASE_URL=sqlite:///var/lib/monti/monti.db \
    MONTI_LOG_JSON=true
EXPOSE 8080
VOLUME ["/var/lib/monti"]
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/monti-server", "--healthcheck"]
ENTRYPOINT ["/usr/local/bin/monti-server"]
