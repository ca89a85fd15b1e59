"""Log privacy: the masking itself, then `log_privacy.install()` in a fresh process, as an
entry point runs it, with the output read from what the process wrote."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from config.log_privacy import mask
from config.phones import masked


@pytest.mark.parametrize(("written", "shown"), [
    ("+12125550123", "+1******0123"),
    ("+1 (212) 555-0123", "+1******0123"),
    ("+1-212-555-0123", "+1******0123"),
    ("tel:+12125550123", "tel:+1******0123"),
    ("+44 20 7946 0018", "+44******0018"),
    ("+442079460018", "+44******0018"),
    ("To=%2B12125550123&From=%2B13125550100", "To=%2B1******0123&From=%2B1******0100"),
    ("2125550123", "******0123"),
    ("(212) 555-0123", "******0123"),
    ("212-555-0123", "******0123"),
    ("212.555.0123", "******0123"),
    ("212 555 0123", "******0123"),
    ("1-212-555-0123", "*******0123"),
    ("12125550123", "*******0123"),
    ("Key (phone)=(+12125550123) already exists.", "Key (phone)=(+1******0123) already exists."),
    ("{'customer': '+12125550123'}", "{'customer': '+1******0123'}"),
])
def test_phone_numbers_keep_only_country_code_and_last_four_digits(written: str, shown: str) -> None:
    assert mask(f"caller {written} rang") == f"caller {shown} rang"


def test_a_masked_number_is_the_same_however_it_was_written() -> None:
    assert masked("+12125550123") == masked("+1 (212) 555-0123") == "+1******0123"
    assert masked("(212) 555-0123") == masked("2125550123") == "******0123"


@pytest.mark.parametrize("line", [
    "call CA0123456789abcdef0123456789abcdef: pipeline failed",
    "account AC2125550123abcdef0123456789abcdef, stream MZ21255501232125550123aaaaaaaaaa",
    "2026-03-02 17:00:00,123 INFO bot.app: shutting down with 2 calls still up",
    "appointment at 2026-03-02T17:00:00.123456-05:00 (+00:00 UTC, +0000)",
    "Uvicorn running on http://127.0.0.1:54321 (Press CTRL+C to quit)",
    "Started server process [1234567]",
    "turn 3: latency 812 ms, ttfb 0.351 s, 2125 bytes",
    "token expires at 1772467200, now 1772467080",
    "usage: prompt_tokens=1234 completion_tokens=56",
    "Pipecat 1.14.0 (Python 3.11.9)",
    "postgresql://postgres@127.0.0.1:5432/postgres",
])
def test_ordinary_log_lines_are_untouched(line: str) -> None:
    assert mask(line) == line


@pytest.mark.parametrize(("secret", "shown"), [
    ('"GET /test?token=Zm9vYmFyYmF6cXV4 HTTP/1.1" 200', '"GET /test?token=*** HTTP/1.1" 200'),
    ("/cb?a=1&auth_token=abc123&b=2", "/cb?a=1&auth_token=***&b=2"),
    ("{'token': '1772467200.q1w2e3r4t5', 'customer': 'x'}", "{'token': '***', 'customer': 'x'}"),
    ('{"event":"start","customParameters":{"token":"1772467200.q1w2"}}',
     '{"event":"start","customParameters":{"token":"***"}}'),
    ('<Parameter name="token" value="1772467200.q1w2e3r4t5"/>', '<Parameter name="token" value="***"/>'),
    ("Authorization: Token 0123456789abcdef0123456789abcdef", "Authorization: Token ***"),
    ("Authorization: Basic QUNhYmM6dHdpbGlvLXRlc3QtdG9rZW4=", "Authorization: Basic ***"),
    ("postgresql://app:s3cret-pw@db.internal:5432/shop", "postgresql://app:***@db.internal:5432/shop"),
])
def test_secrets_are_masked(secret: str, shown: str) -> None:
    assert mask(secret) == shown


@pytest.mark.parametrize(("error", "shown"), [
    ("DETAIL:  Failing row contains (7, Maria, Lopez, +12125550123, maria.lopez@example.com).",
     "DETAIL:  Failing row contains (***)"),
    ('CONTEXT:  JSON data, line 1: {"role": "caller", "text": "I am Maria Lopez\\u0000...',
     "CONTEXT:  JSON data, line 1: ***"),
    ("unnamed portal parameter $2 = 'Lopez'", "unnamed portal parameter $2 = ***"),
])
def test_data_quoted_by_database_errors_is_masked(error: str, shown: str) -> None:
    assert mask(f"Error: failed\n{error}\nmore") == f"Error: failed\n{shown}\nmore"


def test_email_addresses_are_masked() -> None:
    assert mask("sent to maria.lopez@example.com") == "sent to ***@example.com"


def _process_output(script: str) -> str:
    """What a fresh Python process running `script` wrote to stdout and stderr."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_uvicorns_access_log_masks_tokens_in_query_strings() -> None:
    # uvicorn configures its loggers and then calls the factory, as for
    # `uvicorn bot.app:create_app --factory`; the request is a real one.
    output = _process_output("""
        import asyncio
        import uvicorn
        from config import log_privacy

        async def app(scope, receive, send):
            if scope["type"] == "http":
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": b"ok"})

        def factory():
            log_privacy.install()
            return app

        async def main():
            server = uvicorn.Server(uvicorn.Config(factory, factory=True, host="127.0.0.1", port=0,
                                                   log_level="info", lifespan="off"))
            serving = asyncio.create_task(server.serve())
            while not server.started:
                await asyncio.sleep(0.01)
            port = server.servers[0].sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /test?token=Zm9vYmFyYmF6cXV4&caller=%2B12125550123 HTTP/1.1\\r\\n"
                         b"Host: 127.0.0.1\\r\\nConnection: close\\r\\n\\r\\n")
            await reader.read()
            server.should_exit = True
            await serving

        asyncio.run(main())
    """)
    assert '"GET /test?token=***&caller=%2B1******0123 HTTP/1.1" 200' in output
    assert "Zm9vYmFyYmF6cXV4" not in output and "12125550123" not in output


def test_a_database_error_traceback_is_masked(database_url: str) -> None:
    output = _process_output(f"""
        import logging
        import psycopg
        from config import log_privacy

        log_privacy.install()
        with psycopg.connect({database_url!r}) as conn:
            try:
                conn.execute("INSERT INTO customers (first_name, last_name, phone, email)"
                             " VALUES (NULL, 'Lopez', '+12125550199', 'maria.lopez@example.com')")
            except psycopg.errors.NotNullViolation:
                logging.getLogger("crm.customers").exception("could not create the customer")
            conn.rollback()
    """)
    assert "Traceback" in output and "NotNullViolation" in output
    assert "Failing row contains (***)" in output
    for private in ("12125550199", "Lopez", "maria.lopez"):
        assert private not in output


def test_a_unique_key_in_a_traceback_is_masked(database_url: str) -> None:
    output = _process_output(f"""
        import logging
        import psycopg
        from config import log_privacy

        log_privacy.install()
        with psycopg.connect({database_url!r}) as conn:
            insert = "INSERT INTO customers (first_name, phone) VALUES ('Maria', '+12125550198')"
            conn.execute(insert)
            try:
                conn.execute(insert)
            except psycopg.errors.UniqueViolation:
                logging.getLogger("crm.customers").exception("duplicate")
            conn.rollback()
    """)
    assert "Key (phone)=(+1******0198) already exists" in output
    assert "12125550198" not in output


def test_loguru_below_info_is_dropped_and_the_rest_masked() -> None:
    output = _process_output("""
        import logging
        from loguru import logger
        from config import log_privacy

        log_privacy.install()
        logging.getLogger().setLevel(logging.DEBUG)  # even so
        logger.trace("trace: the prompt says Maria")
        logger.debug("Generating chat: Maria Lopez, my card is 4111")
        logger.info("lookup for +12125550123")
        try:
            raise RuntimeError("no customer +12125550123")
        except RuntimeError:
            logger.exception("tool failed")
    """)
    assert "Maria" not in output and "4111" not in output
    assert "INFO __main__: lookup for +1******0123" in output
    assert "ERROR __main__: tool failed\nTraceback" in output
    assert "RuntimeError: no customer +1******0123" in output
    assert "12125550123" not in output


def test_below_info_only_our_own_code_is_logged_and_masked() -> None:
    output = _process_output("""
        import logging
        from config import log_privacy

        log_privacy.install()
        logging.getLogger().setLevel(logging.DEBUG)
        logging.getLogger("websockets.client").debug("> TEXT %s", '{"type":"Speak","text":"Hi Maria"}')
        logging.getLogger("openai._base_client").debug("Request options: {'messages': 'Lopez'}")
        logging.getLogger("pipeline.call").debug("call CA1: caller %s", "+12125550123")
        logging.getLogger("httpx").info("HTTP Request: POST %s", "http://x/?token=abc123")
    """)
    assert "Maria" not in output and "Lopez" not in output
    assert "DEBUG pipeline.call: call CA1: caller +1******0123" in output
    assert "INFO httpx: HTTP Request: POST http://x/?token=***" in output


def test_installing_twice_writes_each_line_once() -> None:
    output = _process_output("""
        import logging
        from config import log_privacy

        log_privacy.install()
        log_privacy.install()
        logging.getLogger("bot.app").warning("once")
    """)
    assert output.count("once") == 1
