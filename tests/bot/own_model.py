"""A language model provider of the shop's own, named the way a shop names it
(LLM_PROVIDER="tests.bot.own_model:plain_openai"): Pipecat's OpenAI service as it comes, at the
configured address, without the built-in provider's time budget and retry."""

from __future__ import annotations

from pipecat.services.openai.llm import OpenAILLMService

from config.settings import Settings


def plain_openai(settings: Settings, system_prompt: str) -> OpenAILLMService:
    return OpenAILLMService(
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url,
        settings=OpenAILLMService.Settings(model=settings.openai_model, system_instruction=system_prompt),
    )
