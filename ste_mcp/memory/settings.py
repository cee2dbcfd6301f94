"""Settings of exemplar memory and live descriptions."""

from typing import Literal

from pydantic import BaseModel, Field


class MemorySettings(BaseModel):
    approval: Literal["auto", "manual"] = "auto"
    description_budget_chars: int = Field(1200, description="Max characters of examples added per tool.")
    examples_per_tool: int = 3
    paraphrases_per_exemplar: int = 3
