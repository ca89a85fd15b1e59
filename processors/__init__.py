"""Our Pipecat frame processors: each takes plain callables and values, knows no database or Twilio."""
