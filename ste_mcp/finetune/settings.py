"""Settings of LoRA fine-tuning rounds."""

from pydantic import BaseModel, Field


class FinetuneSettings(BaseModel):
    lora_rank: int = 8
    lora_alpha: int = 16
    epochs: float = 2.0
    learning_rate: float = 2e-4
    max_length: int = 1024
    replay_fraction: float = 0.1
    train_every_n_exemplars: int = Field(50, description="Trigger a round in `serve` after N new approved exemplars.")
