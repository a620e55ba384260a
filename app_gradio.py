"""Start the Gradio chat UI on the configured KB and model (default: demo KB, embedded models).

python app_gradio.py [--host 127.0.0.1] [--port 7860]

On an address other than loopback the UI asks for a login (user ``admin``, password
``serve.admin_token``) and refuses to start without one: it lists the customers.
A model, adapter or index that cannot be loaded, or bad settings, end with one line
saying what is wrong and how to fix it (exit code 2).
"""

from __future__ import annotations

import argparse
import logging
import sys

from chatrec.config import apply_offline_env, load_settings
from chatrec.kb import KBError
from chatrec.types import Unavailable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--adapter", help="LoRA adapter folder")
    args = parser.parse_args()
    apply_offline_env()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from chatrec.chatbot import Chatbot
    from chatrec.serve.app import ui_login
    from chatrec.ui.gradio_app import build_app

    try:
        settings = load_settings(llm={"adapter": args.adapter} if args.adapter else {})
        auth = ui_login(settings.serve.model_copy(update={"host": args.host}))
        bot = Chatbot(settings, progress=True)
    except (Unavailable, KBError, ValueError) as exc:  # ValueError: settings (SettingsError, validation)
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    logging.getLogger("chatrec").info("ready in %.1f s (model %s)", bot.startup_s, bot.llm.name)
    build_app(bot).queue(default_concurrency_limit=1, max_size=16).launch(
        server_name=args.host, server_port=args.port, auth=auth
    )


if __name__ == "__main__":
    main()
