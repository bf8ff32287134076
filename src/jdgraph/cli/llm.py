"""``jdgraph llm``: a real local model for development (llama.cpp's llama-server), built and served."""

from __future__ import annotations

import subprocess
from typing import Annotated

import typer

from jdgraph import localmodel
from jdgraph.cli.common import console, err_console, handle_errors
from jdgraph.settings import LOCAL_MODEL_PORT

llm_app = typer.Typer(help="A real local model for development (llama.cpp's llama-server).", no_args_is_help=True)


@llm_app.command("build")
@handle_errors
def llm_build() -> None:
    """Build llama-server from llama.cpp's source once (cached; about 5-13 minutes on 2 cores)."""
    console.print(f"llama-server: {localmodel.server_binary(log=err_console.print)}", highlight=False)


@llm_app.command("serve")
@handle_errors
def llm_serve(
    model: Annotated[str, typer.Option(help="Which local model (smollm2: SmolLM2-135M-Instruct, Q4_1).")] = "smollm2",
    port: Annotated[int, typer.Option(min=1024, max=65535)] = LOCAL_MODEL_PORT,
    slots: Annotated[int, typer.Option(min=1, max=16, help="Parallel requests (-np); the context is split.")] = 2,
) -> None:
    """Serve the model on 127.0.0.1 (OpenAI-compatible; built/downloaded on first use). Prints how to point
    jdgraph at it, then runs until interrupted."""
    command = localmodel.serve_command(model, port=port, slots=slots, log=err_console.print)
    alias = localmodel.local_model(model).alias
    log_path = localmodel.cache_dir() / "llama-server.log"
    # The server logs every request: to a file, never to a pipe nobody reads (a full pipe blocks the server).
    log_file = log_path.open("ab")
    proc = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        localmodel.wait_ready(port, proc=proc)
        console.print(
            f"serving {alias} on http://127.0.0.1:{port}/v1 — use it with:\n"
            + (f"  export JDGRAPH_LOCAL_BASE_URL=http://127.0.0.1:{port}/v1\n" if port != LOCAL_MODEL_PORT else "")
            + f"  jdgraph classify examples/rust-developer.txt --model local:{alias}\n"
            f"server log: {log_path}",
            highlight=False,
        )
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log_file.close()
