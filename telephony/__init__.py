"""How we speak Twilio, for the launcher, the call pipeline and the reminders alike: webhook
signatures, media-stream tokens, TwiML, caller ID, the REST API and the media-stream serializer."""
