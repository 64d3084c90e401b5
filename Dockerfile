# Berth registry image: multi-stage, runs as uid 10001, health-checked on /livez.
#
# Online (the normal build; needs the npm registry and the Debian mirrors):
#   docker build -t berth .
# Offline, with the same file (how test/ops/dockerfile.test.ts builds it; no network is used at all):
#   docker build --build-arg APP_SOURCE=prebuilt --build-arg RUNTIME_PACKAGES=base \
#     --build-arg NODE_IMAGE=<a local image with node, /bin/sh, setpriv, redis-server and tini> -t berth <context>
#   where <context> holds this Dockerfile, package.json and prebuilt/ (dist/{oci,platform,server} from `npm run build` and the
#   node_modules of `npm ci --omit=dev`, made on a machine that has them).
# Stages are chosen by build arguments, so this needs BuildKit (the default builder since Docker 23; on older
# CLIs set DOCKER_BUILDKIT=1): the legacy builder would run every stage, `npm ci` and apt-get included.

# The base of every stage: Debian bookworm with Node 20 (glibc: redis-server and tini come from Debian).
ARG NODE_IMAGE=node:20-bookworm-slim
# Where dist/ and node_modules come from: `npm` compiles them here; `prebuilt` copies them from prebuilt/.
ARG APP_SOURCE=npm
# Where redis-server (the embedded metadata store) and tini come from: `apt` installs them; `base` means
# NODE_IMAGE already has them on its PATH.
ARG RUNTIME_PACKAGES=apt

FROM ${NODE_IMAGE} AS app-npm
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --no-audit --no-fund
COPY oci ./oci
COPY platform ./platform
COPY server ./server
RUN npx tsc -p tsconfig.json && npm prune --omit=dev

FROM ${NODE_IMAGE} AS app-prebuilt
WORKDIR /src
COPY prebuilt/node_modules ./node_modules
COPY prebuilt/dist ./dist

FROM ${NODE_IMAGE} AS runtime-apt
RUN apt-get update && apt-get install -y --no-install-recommends redis-server tini \
  && rm -rf /var/lib/apt/lists/*

FROM ${NODE_IMAGE} AS runtime-base

FROM app-${APP_SOURCE} AS app

# Not part of the registry image: the S3 server deploy/compose.yaml runs to try Berth on S3 storage
# (`--target s3rver`; BuildKit skips it otherwise). s3rver keeps objects as files and lacks some S3 calls
# (AbortMultipartUpload, UploadPartCopy): a stand-in for trying things out, not a store for real data. Its
# version is the one package-lock.json gives the tests.
FROM ${NODE_IMAGE} AS s3rver
RUN npm install --global --no-audit --no-fund s3rver@3.7.1 && mkdir -p /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 4568
ENTRYPOINT ["s3rver"]

FROM runtime-${RUNTIME_PACKAGES}
# Written directly rather than with useradd, which a minimal base may not have.
RUN echo 'berth:x:10001:10001:Berth registry:/var/lib/berth:/usr/sbin/nologin' >> /etc/passwd \
  && echo 'berth:x:10001:' >> /etc/group \
  && mkdir -p /var/lib/berth && chown 10001:10001 /var/lib/berth
WORKDIR /app
COPY --from=app /src/node_modules ./node_modules
COPY --from=app /src/dist ./dist
COPY package.json ./
USER berth
ENV BERTH_DATA_DIR=/var/lib/berth
# Node's HTTP parser gives every 64 KiB of a request body a buffer of its own, freed in bulk when the collector
# runs; glibc's default (trim the heap as soon as 128 KiB are free at its top) hands those pages back to the kernel
# and faults them in again for the next body. Keeping up to 32 MiB cut the CPU of a 256 MiB push by 20-50%
# (bench/README.md, session 8). redis-server uses jemalloc and ignores this.
ENV GLIBC_TUNABLES=glibc.malloc.trim_threshold=33554432
VOLUME /var/lib/berth
EXPOSE 5000
# Follows BERTH_HTTP__PORT, so a container moved to another port (e.g. with --network host) stays healthy.
HEALTHCHECK --interval=10s --timeout=3s \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.BERTH_HTTP__PORT||5000}/livez`).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Node's flags for the registry: why each, in server/node-flags.ts.
ENTRYPOINT ["tini", "--", "node", "--single-threaded-gc", "dist/server/cli.js"]
CMD ["serve"]
