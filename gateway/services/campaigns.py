"""Campaigns from config.yaml and which jtel ClientsID sees which."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.services.errors import NotFound
from gateway.settings import CampaignSettings

CAMPAIGN_NOT_FOUND = "Dialler campaign not found"


class Campaigns:
    """The configured campaigns; a campaign without `client` is visible to every ClientsID."""

    def __init__(self, campaigns: Iterable[CampaignSettings]) -> None:
        self._all = tuple(campaigns)
        self._by_id = {c.id: c for c in self._all}

    def all(self) -> list[CampaignSettings]:
        """Every configured campaign, by name (agents work any of them)."""
        return sorted(self._all, key=lambda c: c.name)

    def visible(self, client_id: int) -> list[CampaignSettings]:
        """Campaigns this ClientsID may use, by name."""
        return sorted((c for c in self._all if c.client in (None, client_id)), key=lambda c: c.name)

    def ids(self, client_id: int) -> frozenset[int]:
        """IDs of the campaigns this ClientsID may use."""
        return frozenset(c.id for c in self._all if c.client in (None, client_id))

    def get(self, campaign_id: int, client_id: int | None = None) -> CampaignSettings:
        """A campaign by ID (visible to `client_id` if given)."""
        campaign = self._by_id.get(campaign_id)
        if campaign is None or (client_id is not None and campaign.client not in (None, client_id)):
            raise NotFound(CAMPAIGN_NOT_FOUND)
        return campaign

    def by_name(self, name: str, client_id: int | None = None) -> CampaignSettings:
        """A campaign by name (visible to `client_id` if given)."""
        for campaign in self._all:
            if campaign.name == name and (client_id is None or campaign.client in (None, client_id)):
                return campaign
        raise NotFound(CAMPAIGN_NOT_FOUND)
