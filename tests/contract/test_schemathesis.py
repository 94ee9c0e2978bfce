"""schemathesis against a real gateway process: no 5xx, and every response as /api/openapi.json documents it."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
import yaml

from gateway.api.openapi import DOCUMENT_PATH
from tests.conftest import (
    AGENT_PASSWORD,
    CRM_TOKEN,
    IDENTITIES,
    ROOT,
    free_port,
    gateway_command,
    listening,
    write_config,
)

CONFIG = Path(__file__).with_name("schemathesis.toml")
# Bounded so the run takes well under two minutes on two cores; a fixed seed keeps CI repeatable (run it by
# hand without --seed and with more examples to explore further, see README).
MAX_EXAMPLES = 60
SEED = 20261122
# Log events that mean a request or a background step failed inside the gateway (answered 500, or not at all).
FAILURE_EVENTS = ("_handler_failed", "_step_failed", "Traceback")


def gateway_config(directory: Path, port: int) -> Path:
    """The test identities with the shipped campaigns and queues (the document's examples name them)."""
    shipped = yaml.safe_load((ROOT / "config.yaml").read_text())
    extra = {"users": IDENTITIES["users"], "campaigns": shipped["campaigns"], "waitfield": shipped["waitfield"]}
    return write_config(directory / "gateway.yaml", port, extra=extra)


@pytest.mark.timeout(300)
async def test_schemathesis_finds_nothing(tmp_path: Path) -> None:
    """Checks not_a_server_error, status_code_, content_type_ and response_schema_conformance, all phases."""
    port = free_port()
    config = gateway_config(tmp_path, port)
    log_path = tmp_path / "gateway.log"
    env = {
        **os.environ,
        "GATEWAY_TOKEN": CRM_TOKEN,
        "GATEWAY_AGENT": "agent1",
        "GATEWAY_AGENT_PASSWORD": AGENT_PASSWORD,
        "NO_COLOR": "1",
    }
    command = [
        *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run"),
        f"http://127.0.0.1:{port}{DOCUMENT_PATH}",
        *("--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--no-color"),
    ]
    with log_path.open("wb") as log:
        gateway = await gateway_command("--config", str(config), stdout=log, stderr=log)
        try:
            await listening(port, gateway)
            # cwd: schemathesis keeps its cache (.schemathesis, .hypothesis) in the working directory.
            run = await asyncio.create_subprocess_exec(
                *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path, env=env
            )
            try:
                output, _ = await asyncio.wait_for(run.communicate(), timeout=280)
            except TimeoutError:
                run.kill()
                await run.wait()
                raise
        finally:
            gateway.terminate()
            await gateway.wait()
    report = output.decode(errors="replace")
    assert run.returncode == 0, report
    assert "Test cases:" in report and "passed" in report, report
    gateway_log = log_path.read_text(errors="replace")
    failures = [line for line in gateway_log.splitlines() if any(event in line for event in FAILURE_EVENTS)]
    assert not failures, "\n".join(failures[:20])
