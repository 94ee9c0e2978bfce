"""Request bodies of the GWS outbound operations (gws-outbound.md §3), with the documented types."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

PhoneType = Literal[
    "NoContactType",
    "HomePhone",
    "DirectBusinessPhone",
    "BusinessWithExt",
    "Mobile",
    "VacationPhone",
    "Pager",
    "Modem",
    "VoiceMail",
    "PinPager",
    "EmailAddress",
    "InstantMessaging",
]


class _Op(BaseModel):
    """Fields every outbound operation has. Types are strict: "134" is not an Integer."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    operationName: StrictStr
    devicePath: StrictStr
    # At most 128 characters, as jtel and SNtial: the registry keeps it (a number has at most 20).
    referenceId: Annotated[StrictStr, Field(max_length=128)] | StrictInt | None = None


class CampaignOp(_Op):
    """StartPreviewSession, GetPreviewRecord, EndPreviewSession (campaign name in the URL)."""

    applicationId: StrictInt


class RecordOp(_Op):
    """RejectRecord, and the base of the other operations on one record."""

    applicationId: StrictInt
    campaignName: StrictStr
    callingList: StrictStr


class CompleteRecord(RecordOp):
    """CompleteRecord."""

    callResult: StrictStr | StrictInt | None = None
    phoneNumber: StrictStr | None = None


class DoNotCallRecord(RecordOp):
    """DoNotCallRecord on a record handle."""

    phoneNumber: StrictStr | None = None
    chainAttribute: Literal["AllChain", "RecordOnly"] | None = None


class DoNotCallNumber(_Op):
    """DoNotCallRecord by phone number (no record handle)."""

    applicationId: StrictInt
    campaignName: StrictStr
    callingList: StrictStr | None = None
    phoneNumber: StrictStr


class RescheduleRecord(_Op):
    """RescheduleRecord; timestamp in seconds since 1970 (UTC)."""

    applicationId: StrictInt
    campaignName: StrictStr
    callingList: StrictStr | None = None
    callbackType: Literal["Personal", "Campaign"]
    timestamp: StrictInt


class UpdateRecord(_Op):
    """UpdateRecord."""

    applicationId: StrictInt
    campaignName: StrictStr
    callingList: StrictStr | None = None
    phoneNumber: StrictStr | None = None
    timeZone: StrictStr | None = None
    phoneType: PhoneType | None = None
    from_: StrictInt | None = Field(default=None, alias="from", ge=0, le=86400)
    until: StrictInt | None = Field(default=None, ge=0, le=86400)


class AddRecord(_Op):
    """AddRecord (Create Record)."""

    chainId: StrictInt | None = Field(default=None, ge=-(2**63), le=2**63 - 1)  # a record handle: 64 bits
    applicationId: StrictInt
    campaignName: StrictStr
    callingList: StrictStr
    phoneNumber: StrictStr
    timeZone: StrictStr
    phoneType: PhoneType
    from_: StrictInt = Field(alias="from", ge=0, le=86400)
    until: StrictInt = Field(ge=0, le=86400)
    otherFields: dict[str, Any] | None = None


class GetChainedRecord(_Op):
    """GetChainedRecord."""

    applicationId: StrictInt
    campaignName: StrictStr
