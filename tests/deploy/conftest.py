"""The end-to-end rig of tests/bot (fakes of Deepgram, OpenAI and Twilio) for the deploy tests."""

from tests.bot.conftest import launcher

__all__ = ["launcher"]
