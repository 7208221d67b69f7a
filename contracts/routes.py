"""Routes as data: ordered checkpoints from the gathering point to the reception point."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Checkpoint(_Frozen):
    checkpoint_id: str = Field(pattern=r"^[a-z0-9-]+$")
    crossing: str = Field(description="Border crossing name", examples=["Zhibek-Zholy"])
    post: str = Field(description="This side's border post", examples=["Zhibek-Zholy"])
    country: str = Field(pattern=r"^[A-Z]{3}$")
    direction: Literal["exit", "entry"]


class Site(_Frozen):
    name: str
    country: str = Field(pattern=r"^[A-Z]{3}$")


class Route(_Frozen):
    route_id: str
    origin_country: str = Field(pattern=r"^[A-Z]{3}$")
    destination_country: str = Field(pattern=r"^[A-Z]{3}$")
    gathering_point: Site
    reception_point: Site
    checkpoints: list[Checkpoint] = Field(min_length=1)

    @model_validator(mode="after")
    def _crossings_in_order(self) -> Route:
        # The status stream's legal transitions rest on it: out of the origin, then each crossing
        # an exit and an entry, ending inside the destination.
        expected = ["exit", "entry"] * (len(self.checkpoints) // 2)
        if [c.direction for c in self.checkpoints] != expected or len(self.checkpoints) % 2:
            raise ValueError("checkpoints must alternate exit and entry, starting with an exit")
        if self.checkpoints[0].country != self.origin_country:
            raise ValueError("the first checkpoint must be the origin country's exit post")
        if self.checkpoints[-1].country != self.destination_country:
            raise ValueError("the last checkpoint must be the destination country's entry post")
        return self

    def checkpoint(self, checkpoint_id: str) -> Checkpoint | None:
        return next((c for c in self.checkpoints if c.checkpoint_id == checkpoint_id), None)

    def index_of(self, checkpoint_id: str) -> int:
        for i, cp in enumerate(self.checkpoints):
            if cp.checkpoint_id == checkpoint_id:
                return i
        raise KeyError(checkpoint_id)

    @property
    def transit_countries(self) -> list[str]:
        seen: list[str] = []
        for cp in self.checkpoints:
            if cp.country not in seen and cp.country != self.origin_country:
                seen.append(cp.country)
        return seen


class RouteBook(_Frozen):
    routes: list[Route]

    @classmethod
    def load(cls, path: Path) -> RouteBook:
        return cls.model_validate(json.loads(path.read_text()))

    def get(self, route_id: str) -> Route | None:
        return next((r for r in self.routes if r.route_id == route_id), None)

    def checkpoint(self, checkpoint_id: str) -> tuple[Route, Checkpoint] | None:
        for route in self.routes:
            cp = route.checkpoint(checkpoint_id)
            if cp is not None:
                return route, cp
        return None

    def checkpoint_ids(self) -> list[str]:
        """Every checkpoint on the routes, once each, in route order."""
        return list(dict.fromkeys(cp.checkpoint_id for r in self.routes for cp in r.checkpoints))

    def countries(self) -> list[str]:
        """Every country a route starts in, crosses or ends in, once each (sorted)."""
        found = {r.origin_country for r in self.routes} | {r.destination_country for r in self.routes}
        found |= {cp.country for r in self.routes for cp in r.checkpoints}
        return sorted(found)

    def checkpoints_before(self, checkpoint_id: str) -> list[str]:
        """The checkpoints a case passes before this one, on any route through it."""
        before: dict[str, None] = {}
        for route in self.routes:
            if route.checkpoint(checkpoint_id) is not None:
                for cp in route.checkpoints[: route.index_of(checkpoint_id)]:
                    before[cp.checkpoint_id] = None
        return list(before)

    def country_of(self, checkpoint_id: str) -> str | None:
        found = self.checkpoint(checkpoint_id)
        return found[1].country if found else None
