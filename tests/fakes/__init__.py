"""Loopback fakes of the outside services, speaking their real wire protocols.

Each runs inside the test's event loop on 127.0.0.1 (free port) and records what
it received; point the production client code at it, never patch internals.

* :mod:`tests.fakes.deepgram` -- ``FakeDeepgram``: live STT + TTS websockets.
* :mod:`tests.fakes.openai` -- ``FakeOpenAI``: streaming Chat Completions + tools.
* :mod:`tests.fakes.twilio_rest` -- ``FakeTwilioRest``: the Calls REST resource.
* :mod:`tests.fakes.twilio_caller` -- ``TwilioCaller``: Twilio's side of a Media Stream.
* :mod:`tests.fakes.google_calendar` -- ``FakeGoogleCalendar``: Calendar v3 REST and OAuth refresh.
"""
