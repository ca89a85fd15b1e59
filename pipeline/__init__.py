"""Builds and runs one Pipecat pipeline per phone call."""
