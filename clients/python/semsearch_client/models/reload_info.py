from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.reload_reason import ReloadReason
from typing import cast
import datetime






T = TypeVar("T", bound="ReloadInfo")



@_attrs_define
class ReloadInfo:
    """ The last full reload, for `/v1/stats`.

        Attributes:
            reason (ReloadReason): Why a full reload happened; shown in `/v1/stats`.
            duration_ms (float):
            documents (int):
            index_version (int):
            finished_at (datetime.datetime): RFC 3339, UTC.
     """

    reason: ReloadReason
    duration_ms: float
    documents: int
    index_version: int
    finished_at: datetime.datetime
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        reason = self.reason.value

        duration_ms = self.duration_ms

        documents = self.documents

        index_version = self.index_version

        finished_at = self.finished_at.isoformat()


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "reason": reason,
            "duration_ms": duration_ms,
            "documents": documents,
            "index_version": index_version,
            "finished_at": finished_at,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        reason = ReloadReason(d.pop("reason"))




        duration_ms = d.pop("duration_ms")

        documents = d.pop("documents")

        index_version = d.pop("index_version")

        finished_at = datetime.datetime.fromisoformat(d.pop("finished_at"))




        reload_info = cls(
            reason=reason,
            duration_ms=duration_ms,
            documents=documents,
            index_version=index_version,
            finished_at=finished_at,
        )


        reload_info.additional_properties = d
        return reload_info

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
