"""chatrec: a grounded customer-service and recommendation chat for a shop.

The package is layered so imports point one way (see README "Layout"):
types/config <- kb <- index/kg <- prompts <- llm <- ranking/grounding <- dialogue
<- pipeline (composition root) <- edges (cli, gradio, api).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    # The one version string is pyproject.toml's [project] version, read from the installed metadata.
    __version__ = version("chatrec")
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"
