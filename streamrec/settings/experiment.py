"""Settings section of the experiment the workers run (streamrec.experiment: arms, assignment).
Empty ``arms`` (the default) is no experiment: every user gets the latest promoted version, as
without this section."""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from streamrec.experiment import Arm, control_arm, parse_arms
from streamrec.settings.base import Section


class ExperimentSettings(Section):
    """An A/B test over model versions, read by the worker (who serves which arm) and by
    ``streamrec experiments report`` (which arm is the control)."""

    arms: str = Field(
        "",
        description="comma-separated NAME:SHARE:POLICY, shares in percent adding up to 100, POLICY latest, "
        "version=ID (pinned) or popularity (e.g. online:50:latest,frozen:50:version=v1); empty = no experiment",
    )
    salt: str = Field(
        "streamrec",
        min_length=1,
        description="hashed with each user id to pick the user's arm (a new salt reshuffles the users)",
    )
    control: str = Field(
        "", description="the arm the report compares the others with (default: the popularity arm, else the first)"
    )

    @field_validator("arms")
    @classmethod
    def _arms_parse(cls, value: str) -> str:
        parse_arms(value)  # a ValueError names the entry at fault
        return value

    @field_validator("control")
    @classmethod
    def _control_is_an_arm(cls, value: str, info: ValidationInfo) -> str:
        """Checked on ``control`` (after ``arms``), so the error names the flag to fix."""
        control_arm(parse_arms(info.data.get("arms", "")), value)
        return value

    @property
    def parsed(self) -> tuple[Arm, ...]:
        """The arms, parsed (none without an experiment)."""
        return parse_arms(self.arms)

    @property
    def control_name(self) -> str:
        return control_arm(self.parsed, self.control)
