"""The launcher: FastAPI routes for Twilio and one call pipeline per media stream."""
