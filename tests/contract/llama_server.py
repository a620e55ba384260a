"""An OpenAI-compatible chat server for the LLM contract tests: llama.cpp (``xllamacpp``)
serving a GGUF file on ``127.0.0.1:<port>`` until stdin closes or the process is killed.

    python tests/contract/llama_server.py MODEL.gguf PORT [LORA.gguf ...]

Prints ``LISTENING <url>`` once the model is loaded and the port is open. GGUF LoRA adapters are
loaded at scale 0 (``--lora-init-without-apply``), ids 0, 1, ... in order: a request picks
them with its ``lora`` field. One slot
and one thread: the contract runs one request at a time on a shared 2-core machine.
"""

from __future__ import annotations

import sys


def main(model: str, port: int, loras: list[str] | None = None) -> None:
    import xllamacpp as xlc

    params = xlc.CommonParams()
    params.model.path = model
    params.n_ctx = 2048
    params.n_parallel = 1
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.cpuparams.n_threads = 1
    params.cpuparams_batch.n_threads = 1
    params.sampling.seed = 0
    if loras:
        params.lora_adapters = [xlc.CommonAdapterLoraInfo(path, 0.0) for path in loras]
    server = xlc.Server(params)  # serves from a background thread of this process
    print("LISTENING", server.listening_address, flush=True)
    sys.stdin.read()  # until the test closes the pipe (or kills us)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3:])
