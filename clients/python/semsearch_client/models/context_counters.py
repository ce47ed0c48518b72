from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset







T = TypeVar("T", bound="ContextCounters")



@_attrs_define
class ContextCounters:
    """ Context writes (`cache:context:*`) since start.

        Attributes:
            ttl_secs (int):
            written (int):
            dropped (int):
            too_large (int): Not written: the value exceeded the 1 MiB cap.
            stale (int):
            failed (int):
            purged (int):
            memory_held (int): Not written: Redis is near maxmemory under an evicting policy, and
                the write could have evicted the chatbot's keys (docs/deploy.md).
     """

    ttl_secs: int
    written: int
    dropped: int
    too_large: int
    stale: int
    failed: int
    purged: int
    memory_held: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        ttl_secs = self.ttl_secs

        written = self.written

        dropped = self.dropped

        too_large = self.too_large

        stale = self.stale

        failed = self.failed

        purged = self.purged

        memory_held = self.memory_held


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "ttl_secs": ttl_secs,
            "written": written,
            "dropped": dropped,
            "too_large": too_large,
            "stale": stale,
            "failed": failed,
            "purged": purged,
            "memory_held": memory_held,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        ttl_secs = d.pop("ttl_secs")

        written = d.pop("written")

        dropped = d.pop("dropped")

        too_large = d.pop("too_large")

        stale = d.pop("stale")

        failed = d.pop("failed")

        purged = d.pop("purged")

        memory_held = d.pop("memory_held")

        context_counters = cls(
            ttl_secs=ttl_secs,
            written=written,
            dropped=dropped,
            too_large=too_large,
            stale=stale,
            failed=failed,
            purged=purged,
            memory_held=memory_held,
        )


        context_counters.additional_properties = d
        return context_counters

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
