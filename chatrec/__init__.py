"""chatrec: a grounded customer-service and recommendation chat for a shop.

The package is layered so imports point one way (see README "Layout"):
types/config <- kb <- index/kg <- prompts <- llm <- ranking/grounding <- dialogue
<- pipeline (composition root) <- edges (cli, gradio, api).
"""

__version__ = "0.1.0"
