"""Response shapes of the API, for the OpenAPI spec (docs/openapi.json). Handlers build their
JSON directly (orjson): validating every feed read against a model would cost more than the
Redis read it answers."""

from __future__ import annotations

from pydantic import BaseModel, Field


class FeedItem(BaseModel):
    item_id: str
    score: float
    because: str | None = Field(
        None, description="the item of the user's session that explains this one (null in older feeds)"
    )


class FeedOut(BaseModel):
    """A user's current top-K, as the stream worker last wrote it."""

    user_id: str
    items: list[FeedItem]
    model_version: str = Field(description="the model version that computed it")
    arm: str = Field("", description="the user's experiment arm (empty without an experiment)")
    generated_at: float = Field(description="epoch seconds when the worker computed it")
    age_s: float = Field(description="seconds since generated_at, at the time of the read")
    event_id: str = Field(description="the event that caused this feed")


class Rejected(BaseModel):
    index: int = Field(description="position of the event in the posted list (0 for a single event)")
    reason: str = Field(description="the worker validator's reason")


class EventsAccepted(BaseModel):
    published: int = Field(description="events published to the events topic (acked by the broker)")
    rejected: list[Rejected] = Field(description="refused events (only with ?partial=true; else 422)")


class EventsRefused(BaseModel):
    detail: str
    rejected: list[Rejected]


class ItemAccepted(BaseModel):
    item_id: str
    published: bool
    available: bool


class UserErased(BaseModel):
    user_id: str
    published: bool
    requested_at: float


class ModelVersion(BaseModel):
    version: str
    sha256: str
    parent: str | None
    created: float
    metrics: dict = Field(description="the version's gate metrics (holdout HR@10/NDCG@10 of the promotion)")
    served: bool = Field(description="true for the version the latest announcement names")


class ModelsOut(BaseModel):
    served: str | None = Field(description="version of the latest announcement on the models topic")
    announcement_caught_up: bool = Field(description="the API has read the whole models topic")
    versions: list[ModelVersion] = Field(description="registry versions, oldest first")


class Problem(BaseModel):
    detail: str


class Ready(BaseModel):
    ready: bool
    reasons: list[str]
