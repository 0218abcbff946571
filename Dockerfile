# formwork as a container image: for the GitHub Action (action.yml) and for running the agent.
#
#   docker build -t formwork .
#   docker run --rm -v "$PWD:/work" -w /work formwork validate
#   docker run -p 8080:8080 -v formwork-data:/home/formwork/data -e FORMWORK_WEBHOOK_SECRET \
#     -e GITHUB_TOKEN formwork --data-dir /home/formwork/data serve --config /etc/formwork-server.yml
#
# Stages: the build (Rust toolchain, release profile) and a small runtime (Debian slim with
# CA certificates and git, with which `formwork serve` fetches), running as an unprivileged
# user; the default image puts the build's binary in the runtime, `--target prebuilt` the
# release workflow's.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so that a change to formwork's own code reuses their layer.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && echo '' > src/lib.rs \
    && echo 'fn main() {}' > benches/affected.rs \
    && cargo build --release --locked --bin formwork \
    && rm -rf src benches
COPY src src
COPY benches benches
COPY data data
# The dummy sources above are older than the real ones; touch makes cargo rebuild formwork.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin formwork \
    && strip target/release/formwork

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 10001 --create-home --shell /usr/sbin/nologin formwork
USER 10001:10001
WORKDIR /home/formwork
# In a container, `formwork serve` listens on every interface so that `docker run -p 8080:8080`
# reaches it (outside one its default is 127.0.0.1). FORMWORK_LISTEN, like --listen, takes
# precedence over `listen:` in the settings file.
ENV FORMWORK_LISTEN=0.0.0.0:8080
EXPOSE 8080
# The agent's liveness endpoint, asked with bash alone (the image has no curl).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q '^ok' <&3"]
# libgit2, like git, refuses a repository owned by another user: run the container as the
# owner of the checkout it is given (`docker run --user "$(id -u):$(id -g)"`, as action.yml does).
ENTRYPOINT ["/usr/local/bin/formwork"]

# The release image (`--target prebuilt`): the static binaries the release workflow built, one
# per architecture in dist/<arch>/ (docker buildx gives TARGETARCH: amd64, arm64).
FROM runtime AS prebuilt
ARG TARGETARCH
COPY dist/${TARGETARCH}/formwork /usr/local/bin/formwork

# The default: built from source here.
FROM runtime
COPY --from=build /src/target/release/formwork /usr/local/bin/formwork
