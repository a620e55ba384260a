"""Fine-tuning: training examples from logged conversations and QLoRA SFT."""
