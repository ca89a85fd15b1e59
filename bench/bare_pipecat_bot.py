"""A bare Pipecat 1.14 Twilio bot, the baseline bench/call_bench.py compares our launcher with.

    python bench/bare_pipecat_bot.py --port 8765 [--turn-detection silence|smart-turn]

Written as Pipecat's own examples and dev runner write one, with none of this project's code:
`POST /twilio/voice` answers `<Connect><Stream>` TwiML, `WS /ws` runs one pipeline per call
(Deepgram STT -> OpenAI -> Deepgram TTS, Silero VAD, Pipecat's default interruptions), the bot
speaks a greeting first, and a hang-up cancels the pipeline. `GET /health` says it is up.
Configured from the environment: DEEPGRAM_API_KEY, DEEPGRAM_BASE_URL, OPENAI_API_KEY,
OPENAI_BASE_URL, OPENAI_MODEL, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_API_BASE_URL;
PORT and TURN_DETECTION stand in for the flags. `--turn-detection` picks how a user turn ends:
`silence` (TURN_SILENCE_SECONDS, default 0.6, without speech after the VAD's 0.2 s stop, as our
launcher does) or `smart-turn` (Pipecat's default Smart-Turn v3 model).
"""

from __future__ import annotations

import argparse
import os
import sys

import uvicorn
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import PlainTextResponse, Response
from loguru import logger
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import TTSSpeakFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.runner.utils import parse_telephony_websocket
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.services.deepgram.stt import DeepgramSTTService
from pipecat.services.deepgram.tts import DeepgramTTSService
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.workers.runner import WorkerRunner

SAMPLE_RATE = 8000  # Twilio's
SYSTEM_PROMPT = ("You are the phone assistant of a car repair shop. You help callers book, move and "
                 "cancel service appointments. Keep answers short: they are spoken on a phone call.")
GREETING = "Thanks for calling the shop, this is the virtual service assistant. How can I help?"


def turn_strategies(turn_detection: str) -> UserTurnStrategies:
    if turn_detection == "smart-turn":
        return UserTurnStrategies()  # Pipecat's defaults: VAD/transcription start, Smart-Turn v3 stop
    silence = float(os.environ.get("TURN_SILENCE_SECONDS", "0.6"))
    return UserTurnStrategies(stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=silence)])


async def run_call(websocket: WebSocket, turn_detection: str) -> None:
    _, call = await parse_telephony_websocket(websocket)
    serializer = TwilioFrameSerializer(
        stream_sid=call.stream_id,
        call_sid=call.call_id,
        account_sid=os.environ["TWILIO_ACCOUNT_SID"],
        auth_token=os.environ["TWILIO_AUTH_TOKEN"],
        base_url=os.environ.get("TWILIO_API_BASE_URL"),
    )
    transport = FastAPIWebsocketTransport(websocket, FastAPIWebsocketParams(
        audio_in_enabled=True, audio_out_enabled=True, serializer=serializer))
    deepgram_url = os.environ.get("DEEPGRAM_BASE_URL", "wss://api.deepgram.com")
    stt = DeepgramSTTService(api_key=os.environ["DEEPGRAM_API_KEY"], base_url=deepgram_url,
                             sample_rate=SAMPLE_RATE)
    llm = OpenAILLMService(
        api_key=os.environ["OPENAI_API_KEY"],
        base_url=os.environ.get("OPENAI_BASE_URL"),
        settings=OpenAILLMService.Settings(model=os.environ.get("OPENAI_MODEL", "gpt-4o"),
                                           system_instruction=SYSTEM_PROMPT),
    )
    tts = DeepgramTTSService(api_key=os.environ["DEEPGRAM_API_KEY"], base_url=deepgram_url,
                             sample_rate=SAMPLE_RATE, encoding="linear16",
                             settings=DeepgramTTSService.Settings(voice="aura-2-thalia-en"))
    user, assistant = LLMContextAggregatorPair(LLMContext(), user_params=LLMUserAggregatorParams(
        vad_analyzer=SileroVADAnalyzer(params=VADParams(stop_secs=0.2)),
        user_turn_strategies=turn_strategies(turn_detection),
    ))
    worker = PipelineWorker(
        Pipeline([transport.input(), stt, user, llm, tts, transport.output(), assistant]),
        params=PipelineParams(audio_in_sample_rate=SAMPLE_RATE, audio_out_sample_rate=SAMPLE_RATE),
    )

    @transport.event_handler("on_client_connected")
    async def on_client_connected(_transport: FastAPIWebsocketTransport, _ws: WebSocket) -> None:
        await worker.queue_frames([TTSSpeakFrame(GREETING)])

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(_transport: FastAPIWebsocketTransport, _ws: WebSocket) -> None:
        await worker.cancel()

    runner = WorkerRunner(handle_sigint=False)  # uvicorn owns the signals, as in the dev runner
    await runner.add_workers(worker)
    await runner.run()


def create_app(stream_url: str, turn_detection: str) -> FastAPI:
    app = FastAPI()
    twiml = (f'<?xml version="1.0" encoding="UTF-8"?>'
             f'<Response><Connect><Stream url="{stream_url}"/></Connect></Response>')

    @app.post("/twilio/voice")
    async def voice(_request: Request) -> Response:
        return Response(content=twiml, media_type="application/xml")

    @app.get("/health")
    async def health() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.websocket("/ws")
    async def stream(websocket: WebSocket) -> None:
        await websocket.accept()
        await run_call(websocket, turn_detection)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    # Defaults from the variables our launcher reads, so a bench can start either with one env.
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8765")))
    parser.add_argument("--turn-detection", choices=["silence", "smart-turn"],
                        default=os.environ.get("TURN_DETECTION", "silence"))
    args = parser.parse_args()
    # INFO, as our launcher logs: Pipecat's default DEBUG output would cost this side extra CPU.
    logger.remove()
    logger.add(sys.stderr, level="INFO")
    app = create_app(f"ws://{args.host}:{args.port}/ws", args.turn_detection)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
