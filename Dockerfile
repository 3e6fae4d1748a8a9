# The creditbus image: one image, one process per container, picked by the sub-command
# (`worker`, `sink`, `query`, `topics ensure`, ...). See docker-compose.yml.
#
#   docker build -t creditbus .
#   docker run --rm creditbus --help

# --- build: install the project and its dependencies into a virtualenv -----------------------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# A compiler for any dependency that has no wheel for this platform (e.g. on arm64).
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# What `pip install .` needs: the metadata (README.md is the package's readme), the core and
# the folders that hold creditbus.streams, .connectors and .services (pyproject.toml).
COPY pyproject.toml README.md ./
COPY creditbus ./creditbus
COPY streams ./streams
COPY connectors ./connectors
COPY services ./services
RUN pip install --upgrade pip \
 && pip install . \
 && creditbus --help > /dev/null

# --- runtime ---------------------------------------------------------------------------------
FROM python:3.11-slim

LABEL org.opencontainers.image.title="creditbus" \
      org.opencontainers.image.description="Credit-archive integration bus (Kafka/Faust) for key population groups" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/creditbus \
    CREDITBUS_HOME=/var/lib/creditbus \
    CREDITBUS_SCHEMA_DIR=/opt/creditbus/schemas/avro

# A fixed, unprivileged uid/gid so that volumes can be prepared on the host if needed.
RUN groupadd --system --gid 10001 creditbus \
 && useradd --system --uid 10001 --gid creditbus --home-dir /var/lib/creditbus \
            --shell /usr/sbin/nologin creditbus \
 && mkdir -p /var/lib/creditbus/worker /var/lib/creditbus/query \
 && chown -R creditbus:creditbus /var/lib/creditbus

COPY --from=build /opt/venv /opt/venv
# The installed package does not carry the .avsc contracts (its default CREDITBUS_SCHEMA_DIR
# points into a source checkout), so they live here and CREDITBUS_SCHEMA_DIR says where.
COPY schemas /opt/creditbus/schemas

USER creditbus:creditbus
WORKDIR /var/lib/creditbus

# query (HTTP + /metrics), worker metrics, sink metrics, Faust web of a worker
EXPOSE 8080 9101 9102 6066

ENTRYPOINT ["creditbus"]
CMD ["--help"]
