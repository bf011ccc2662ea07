# citytwin's one image: every process (store owner, API, later the gateways,
# rules and viewer) is the same `citytwin` CLI with a different command.
FROM node:20-bookworm-slim
WORKDIR /app
# ffmpeg renders the camera simulator's clips (and, next, decodes sampled keyframes).
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# The aedes patch (patch-package, run by npm ci) must be there before the install.
COPY patches ./patches
RUN npm ci --omit=dev --ignore-scripts=false
# Gateway workers run a bundle the primary writes here at start (ingest/mqtt/worker-bundle.ts).
RUN mkdir -p node_modules/.cache/citytwin && chown node:node node_modules/.cache/citytwin
COPY bin ./bin
COPY lib ./lib
COPY store ./store
COPY registry ./registry
COPY ingest ./ingest
COPY twin ./twin
COPY rules ./rules
COPY simulators ./simulators
COPY app ./app
COPY viewer ./viewer
USER node
ENTRYPOINT ["node", "bin/citytwin.js"]
CMD ["start"]
