"""Base of every settings section."""

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A settings section. Unknown keys are refused so that a mistyped
    ``STREAMREC_WORKER__BATCH_SIZ`` fails loudly instead of being ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)
